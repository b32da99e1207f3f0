// The CONNECT check of IoT Hub's MQTT dialect: the client id names the identity, the username is
// `<host>/<d>[/<m>]/?api-version=…`, and the password is a SAS token whose `sr` covers the identity and
// whose signature matches one of its keys. The caller says which keys count (registry or derived).
import { parseSas, resourceCovers, SasError, verifySas } from '../runtime/sas.ts';
import { identityKey } from './topics.ts';
import type { Identity } from './topics.ts';

export interface ConnectCheck {
  identity: Identity;
  username: string | undefined;
  password: Buffer | undefined;
  /** Host names the hub answers to; the username and the token's `sr` must use one. */
  hostNames: readonly string[];
  /**
   * The keys a token for `identity` may be signed with: the identity's own keys and its device's,
   * or a policy's keys when the token names one (`skn`). Throws to refuse (e.g. an unknown identity).
   */
  keysFor: (identity: Identity, keyName: string | undefined) => string[];
  /**
   * IoT Hub's rule: a token signed with an identity's own key must name exactly that identity in `sr`
   * (a device-scoped token is refused for a module login). Policy tokens (`skn`) may cover more.
   */
  exactAudience?: boolean;
}

/** Returns the token expiry (seconds since the epoch), or throws with why the CONNECT is refused. */
export function checkConnect(check: ConnectCheck): number {
  const { identity, username, password, hostNames } = check;
  if (!username) throw new Error('no username');
  const q = username.indexOf('/?');
  if (q < 0) throw new Error('username has no "/?api-version=" part');
  const params = new URLSearchParams(username.slice(q + 2));
  if (!params.get('api-version')) throw new Error('username has no api-version');
  const path = username.slice(0, q);
  const slash = path.indexOf('/');
  const host = path.slice(0, slash);
  if (!hostNames.some((h) => h.toLowerCase() === host.toLowerCase())) throw new Error(`username host "${host}" is not this hub (${hostNames.join(', ')})`);
  if (path.slice(slash + 1) !== identityKey(identity)) throw new Error(`username identity "${path.slice(slash + 1)}" differs from the client id "${identityKey(identity)}"`);

  if (!password || password.length === 0) throw new Error('no password (SAS token)');
  const sas = parseSas(password.toString('utf8'));
  const srHost = sas.resource.replace(/^https?:\/\//i, '').split('/')[0] ?? '';
  if (!hostNames.some((h) => h.toLowerCase() === srHost.toLowerCase())) throw new Error(`token sr host "${srHost}" is not this hub`);
  const target = `${srHost}/devices/${identity.deviceId}${identity.moduleId === undefined ? '' : `/modules/${identity.moduleId}`}`;
  if (!resourceCovers(sas.resource, target)) throw new SasError('scope', `token sr ${sas.resource} does not cover ${target}`);
  if (check.exactAudience && sas.keyName === undefined && !resourceCovers(target, sas.resource)) {
    throw new SasError('scope', `token sr ${sas.resource} is not the audience ${target}`);
  }
  const keys = check.keysFor(identity, sas.keyName);
  if (keys.length === 0) throw new SasError('unknown-key', sas.keyName === undefined ? `no key for ${identityKey(identity)}` : `no policy named ${sas.keyName}`);
  verifySas(sas, keys);
  return sas.expiry;
}
