// A real OpenID Connect provider for the SSO tests (panva/oidc-provider), on loopback only.
//
// The test suite starts it (tests/e2e/sso_idp.py) with the relying party's addresses in the
// environment; it listens on a port the kernel picks and prints one JSON line with its issuer.
// Sign-in is a plain username/password form over the accounts below; consent is granted at
// once, as a company provider does for a first-party application.
//
// POST /__test__/fault with `tamper`, `wrong-audience` or `expired` makes the next token
// response carry a bad ID token: the tests use it to show the academy refuses each one.
// `down` makes the provider exit when the next code is to be exchanged.

import http from 'node:http';
import { randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';

const ACCOUNTS = {
  nadia: {
    password: 'nadia-sso-password',
    sub: 'b6f1c1e0-nadia',
    claims: {
      email: 'nadia.novak@example.com',
      email_verified: true,
      given_name: 'Nadia',
      family_name: 'Novak',
      name: 'Nadia Novak',
      preferred_username: 'nadia',
      employee_id: 'E-1001',
      department: 'Data Science',
      manager_id: 'E-1000',
      roles: ['Instructor'],
    },
  },
  // An account the directory never gave an employee id.
  nobody: {
    password: 'nobody-sso-password',
    sub: 'c9d2aa41-nobody',
    claims: { email: 'nobody@example.com', preferred_username: 'nobody' },
  },
};

const required = (name) => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`${name} must be set\n`);
    process.exit(2);
  }
  return value;
};

const client = {
  client_id: required('IDP_CLIENT_ID'),
  client_secret: required('IDP_CLIENT_SECRET'),
  client_name: 'LLM Academy',
  redirect_uris: [required('IDP_REDIRECT_URI')],
  post_logout_redirect_uris: [required('IDP_POST_LOGOUT_REDIRECT_URI')],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };

let nextFault = null;

async function faulty(idToken, fault) {
  const header = decodeProtectedHeader(idToken);
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  const resign = (payload) => new SignJWT(payload).setProtectedHeader(header).sign(privateKey);
  if (fault === 'tamper') {
    // The same header and signature over a payload someone changed on the way.
    const [head, , signature] = idToken.split('.');
    const changed = Buffer.from(JSON.stringify({ ...claims, roles: ['HR'] })).toString('base64url');
    return `${head}.${changed}.${signature}`;
  }
  if (fault === 'wrong-audience') return resign({ ...claims, aud: 'another-application' });
  if (fault === 'expired') return resign({ ...claims, iat: now - 7200, exp: now - 3600 });
  throw new Error(`unknown fault ${fault}`);
}

const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${title}</title></head><body><main><h1>${title}</h1>${body}</main></body></html>`;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const configuration = {
  clients: [client],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID(), randomUUID()] },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'employee'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    employee: ['employee_id', 'department', 'manager_id', 'roles'],
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out of the test provider?', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<p>You are signed out of the test provider.</p>');
      },
    },
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Provider error', `<pre>${escape(JSON.stringify(out))}</pre>`);
  },
  async findAccount(ctx, sub) {
    const account = Object.values(ACCOUNTS).find((candidate) => candidate.sub === sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account.claims }) };
  },
};

const readForm = (req) => new Promise((resolve, reject) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => resolve(new URLSearchParams(raw)));
  req.on('error', reject);
});

function loginForm(uid, message = '') {
  return page('Test provider sign-in', `${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in to the test provider</button></form>`);
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(provider, req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const account = ACCOUNTS[form.get('username')];
    if (!account || account.password !== form.get('password')) {
      return sendHtml(res, 200, loginForm(uid, 'Wrong username or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (details.prompt.name === 'login') return sendHtml(res, 200, loginForm(uid));
  // Consent: granted at once for everything asked.
  const { accountId } = details.session;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.use(async (ctx, next) => {
    await next();
    if (nextFault && ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
      const fault = nextFault;
      nextFault = null;
      ctx.body = { ...ctx.body, id_token: await faulty(ctx.body.id_token, fault) };
    }
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      if (url.pathname === '/__test__/fault' && req.method === 'POST') {
        const fault = (await readForm(req)).get('fault');
        if (!['tamper', 'wrong-audience', 'expired', 'down'].includes(fault)) {
          return sendHtml(res, 400, page('Unknown fault', escape(fault)));
        }
        nextFault = fault;
        res.writeHead(204);
        return res.end();
      }
      if (nextFault === 'down' && url.pathname === '/token') {
        // Gone between issuing the code and its exchange: the connection drops unanswered.
        req.socket.destroy();
        process.exit(0);
      }
      if (url.pathname.startsWith('/interaction/')) return await interaction(provider, req, res, url);
      return callback(req, res);
    } catch (error) {
      return sendHtml(res, 500, page('Provider failure', escape(error)));
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// At once, not after the browser's keep-alive connections close: "down" means down.
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
