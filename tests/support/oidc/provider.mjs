// A real OpenID provider for the single sign-on tests: the npm package oidc-provider,
// with its development login and consent pages (any password signs in), on 127.0.0.1.
//
//   node provider.mjs <port> <settings.json>
//
// settings.json: {"clients": [oidc-provider client metadata…],
//                 "accounts": {"<login>": {"email": …, "email_verified": …, "name": …}},
//                 "key_file": "<path>"}
// A login not listed signs in with no e-mail address. The signing key is read from
// key_file, or made and written there: providers given the same file sign alike, as the
// tenants of one multi-tenant provider do.
//
// For the tests of what the relying party refuses, POST /test/substitute with an ID token
// as the body makes the token endpoint's next answer carry that token instead of its own:
// a token from elsewhere, as a mix-up or a man in the middle would bring it. The tokens
// substituted are real ones, issued by a provider like this to some client.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, settingsFile] = process.argv.slice(2);
const settings = JSON.parse(readFileSync(settingsFile, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

if (!existsSync(settings.key_file)) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'tests-1', use: 'sig', alg: 'RS256' };
  writeFileSync(settings.key_file, JSON.stringify(jwk));
}
const key = JSON.parse(readFileSync(settings.key_file, 'utf8'));

const provider = new Provider(issuer, {
  clients: settings.clients,
  jwks: { keys: [key] },
  cookies: { keys: ['expensewise-tests-only'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = settings.accounts[id] ?? {};
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
});

let substitute = null;
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/substitute' && ctx.method === 'POST') {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    substitute = body.trim();
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === '/token' && substitute && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: substitute };
    substitute = null;
  }
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} ready`);
});
