"""Lists the messages of a JetStream stream, as a NATS client that is not ours sees them.

Usage: python jetstream_messages.py NATS_URL STREAM
Prints a JSON array of {"seq", "subject", "msg_id", "event_id" (null for a message that
is not an event), "batch_id" (the atomic batch a message came in, or null), "data" (the
body as text)}; `[]` while the stream does not exist.
"""

import asyncio
import json
import sys

import nats
from nats.js.errors import NotFoundError


async def main(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        try:
            info = await jetstream.stream_info(stream)
        except NotFoundError:
            # Not created yet (or deleted): no messages so far.
            print("[]")
            return
        if info.state.messages == 0:
            # Created, nothing stored yet: its sequences read 0 to 0, and 0 is no message.
            print("[]")
            return
        messages = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await jetstream.get_msg(stream, seq)
            try:
                event_id = json.loads(message.data).get("event_id")
            except (ValueError, AttributeError):
                event_id = None
            headers = message.headers or {}
            messages.append(
                {
                    "seq": seq,
                    "subject": message.subject,
                    "msg_id": headers.get("Nats-Msg-Id"),
                    "event_id": event_id,
                    "batch_id": headers.get("Nats-Batch-Id"),
                    "data": message.data.decode(),
                }
            )
        print(json.dumps(messages))
    finally:
        await client.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
