"""The test script's bookkeeping, kept out of shell text parsing.

`build`: reads cargo's JSON messages (`cargo build --message-format=json`) on stdin,
shows the compiler's diagnostics, fails on any warning in the workspace's own crates,
and prints one line per test binary: name, package directory, executable.

`junit OUT DIR`: reads the result logs that libtest writes with `--logfile` (one
`ok NAME` / `failed NAME` / `ignored NAME` per line) from DIR/*.log, and the exit status
of each binary from DIR/*.status; writes a JUnit XML report to OUT and prints
"PASSED FAILED". A binary that failed without naming a failed test (a crash, a panic
outside any test) counts as one failed case of its own.
"""

import json
import pathlib
import sys
import xml.etree.ElementTree as ET


def build():
    warnings = 0
    for line in sys.stdin:
        message = json.loads(line)
        reason = message.get("reason")
        if reason == "compiler-message":
            sys.stderr.write(message["message"]["rendered"])
            # Dependencies' lints are capped by cargo; only our crates can warn.
            if message["message"]["level"] == "warning" and message["package_id"].startswith("path+"):
                warnings += 1
        elif reason == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
            target = message["target"]
            name = f"{target['name']}-{target['kind'][0]}"
            package_dir = pathlib.Path(message["manifest_path"]).parent
            print(f"{name}\t{package_dir}\t{message['executable']}")
    if warnings:
        sys.exit(f"{warnings} warnings: the build must have none")


def junit(out, directory):
    directory = pathlib.Path(directory)
    suites = ET.Element("testsuites")
    passed = failed = 0
    for status_file in sorted(directory.glob("*.status")):
        name = status_file.stem
        status = int(status_file.read_text().strip() or "1")
        log = directory / f"{name}.log"
        lines = log.read_text().splitlines() if log.exists() else []
        suite = ET.SubElement(suites, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for line in lines:
            result, _, test = line.partition(" ")
            if not test:
                continue
            case = ET.SubElement(suite, "testcase", classname=name, name=test)
            counts["tests"] += 1
            if result == "failed":
                ET.SubElement(case, "failure", message="failed")
                counts["failures"] += 1
            elif result == "ignored":
                ET.SubElement(case, "skipped")
                counts["skipped"] += 1
        if status != 0 and counts["failures"] == 0:
            case = ET.SubElement(suite, "testcase", classname=name, name="(the binary)")
            ET.SubElement(case, "failure", message=f"exited with status {status}")
            counts["tests"] += 1
            counts["failures"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
        passed += counts["tests"] - counts["failures"] - counts["skipped"]
        failed += counts["failures"]
    ET.ElementTree(suites).write(out, encoding="utf-8", xml_declaration=True)
    print(passed, failed)


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        build()
    elif sys.argv[1:2] == ["junit"] and len(sys.argv) == 4:
        junit(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: test_results.py build | junit OUT DIR")
