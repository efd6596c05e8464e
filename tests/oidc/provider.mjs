// A real OpenID provider (oidc-provider) for nskd's end-to-end tests,
// listening on 127.0.0.1:<port> (0: any). It serves discovery and the JWKS
// itself; /test/mint signs test tokens with the provider's own private key
// (a test-only way to get tokens for any user, group or flaw without a
// browser login). Prints one JSON line {"issuer": ...} when ready.
//
// POST /test/mint with a JSON body:
//   sub, email, groups, aud, iss, exp (seconds from now; negative: expired),
//   extra (more claims), flaw: "other-key" | "alg-none" | "hs256-public" |
//   "no-kid" | "unknown-kid"
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.argv[2] || 0);
const KID = 'test-key-1';

const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
const other = await jose.generateKeyPair('RS256', { extractable: true });
const privateJwk = { ...(await jose.exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };
const publicPem = await jose.exportSPKI(publicKey);

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [privateJwk] },
  clients: [{
    client_id: 'nskd-test',
    client_secret: 'nskd-test-secret-0123456789',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
});
const callback = provider.callback();

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function mint(o) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: o.sub ?? o.email ?? 'nobody',
    iss: o.iss ?? issuer,
    aud: o.aud ?? 'nskd',
    iat: now,
    exp: now + (o.exp ?? 300),
    ...(o.email !== undefined ? { email: o.email } : {}),
    ...(o.groups !== undefined ? { groups: o.groups } : {}),
    ...(o.extra ?? {}),
  };
  switch (o.flaw) {
    case 'alg-none':
      return `${b64({ alg: 'none', typ: 'JWT', kid: KID })}.${b64(claims)}.`;
    case 'hs256-public': {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: KID })}.${b64(claims)}`;
      const mac = crypto.createHmac('sha256', publicPem).update(input).digest('base64url');
      return `${input}.${mac}`;
    }
    default: {
      const header = { alg: 'RS256', typ: 'JWT' };
      if (o.flaw !== 'no-kid') header.kid = o.flaw === 'unknown-kid' ? 'rotated-away' : KID;
      const key = o.flaw === 'other-key' ? other.privateKey : privateKey;
      return new jose.SignJWT(claims).setProtectedHeader(header).sign(key);
    }
  }
}

server.on('request', (req, res) => {
  if (req.url === '/test/mint' && req.method === 'POST') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      try {
        const token = await mint(JSON.parse(body || '{}'));
        res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
      }
    });
    return;
  }
  callback(req, res);
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => process.exit(0));
