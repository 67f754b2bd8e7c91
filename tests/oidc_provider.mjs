// A real OpenID Connect provider (the npm package oidc-provider) on loopback for the single sign-on tests.
//
//   node tests/oidc_provider.mjs   with OIDC_TEST_PORT, OIDC_TEST_CLIENT_ID, OIDC_TEST_CLIENT_SECRET,
//                                  OIDC_TEST_REDIRECT_URI and OIDC_TEST_ACCOUNTS_FILE (JSON: {"alice": {"email": ..., "groups": [...]}})
//
// One static confidential client; the accounts are the JSON given. The provider's development sign-in form (its
// "devInteractions") takes a login name and a password, which it does not check: the tests are about what the
// registry does with the provider's answer. Prints "ready <issuer>" once it listens.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_TEST_PORT);
const issuer = `http://127.0.0.1:${port}`;
// Read at every sign-in, so a test can change someone's groups between two sign-ins.
const accountsOf = () => JSON.parse(readFileSync(process.env.OIDC_TEST_ACCOUNTS_FILE, 'utf8'));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_TEST_CLIENT_ID,
      client_secret: process.env.OIDC_TEST_CLIENT_SECRET,
      redirect_uris: process.env.OIDC_TEST_REDIRECT_URI.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  async findAccount(ctx, id) {
    const account = accountsOf()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, email_verified: true, ...account };
      },
    };
  },
  cookies: { keys: ['registry-tests-only'] },
  features: { devInteractions: { enabled: true } },
  // Plain http on loopback: no TLS in the test run.
  clientBasedCORS: () => true,
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
