// runtime.settings.registryCredentials -> kubernetes.io/dockerconfigjson Secrets, and which of them a
// module's image needs. Passwords go only into the Secret's data, never into issue text.
import type { V1Secret } from '@kubernetes/client-node';
import type { RegistryCredential } from '../manifest/model.ts';
import { canonicalJson } from './canonical.ts';
import { imageRegistryHost, normalizeRegistryHost } from './docker.ts';
import type { Issues } from './issues.ts';
import { commonLabels, pointer, sanitizeDnsLabel, type LabelContext } from './names.ts';

export interface PullSecret {
  credential: string;
  secretName: string;
  host: string;
  secret?: V1Secret;
}

const credentialsPath = '/modulesContent/$edgeAgent/properties.desired/runtime/settings/registryCredentials';

export function registrySecretName(credentialName: string): string {
  return sanitizeDnsLabel(`registry-${credentialName}`);
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export function registrySecrets(
  credentials: Record<string, RegistryCredential>,
  passwords: Record<string, string>,
  namespace: string,
  labels: LabelContext,
  issues: Issues,
): PullSecret[] {
  const result: PullSecret[] = [];
  const byName = new Map<string, string>();
  for (const id of Object.keys(credentials).sort()) {
    const credential = credentials[id];
    if (!credential) continue;
    const at = `${credentialsPath}${pointer(id)}`;
    const secretName = registrySecretName(id);
    const clash = byName.get(secretName);
    if (clash !== undefined) {
      issues.error('IEO_NAME_COLLISION', at, `registry credentials ${JSON.stringify(clash)} and ${JSON.stringify(id)} both map to Secret ${secretName}`);
      continue;
    }
    byName.set(secretName, id);
    const host = normalizeRegistryHost(credential.address);
    const password = passwords[id] ?? credential.password;
    const entry: PullSecret = { credential: id, secretName, host };
    if (password === undefined) {
      const where = credential.passwordSecretRef
        ? `Secret ${credential.passwordSecretRef.name} key ${credential.passwordSecretRef.key}`
        : 'neither inline nor in a passwordSecretRef';
      issues.error('IEO_REGISTRY_CREDENTIAL', `${at}/password`, `registry credential ${JSON.stringify(id)} (${host}): the password is not available (${where})`);
    } else {
      // Docker Hub credentials are keyed by the legacy index URL in config.json.
      const authKey = host === 'docker.io' ? 'https://index.docker.io/v1/' : host;
      const config = {
        auths: { [authKey]: { username: credential.username, password, auth: base64(`${credential.username}:${password}`) } },
      };
      entry.secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName, namespace, labels: commonLabels(labels, 'registry-credential') },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': base64(canonicalJson(config)) },
      };
    }
    result.push(entry);
  }
  return result;
}

/** The pull secrets whose registry is the image's registry. */
export function pullSecretsFor(image: string, secrets: PullSecret[]): string[] {
  const host = imageRegistryHost(image);
  return secrets.filter((s) => s.host === host).map((s) => s.secretName).sort();
}
