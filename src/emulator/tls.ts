// The emulator's certificates: a root CA (generated, or given), an intermediate CA it signs, and a server
// certificate the intermediate signs for the address the emulator binds. The server sends the leaf and the
// intermediate, never the root: clients trust the root from their CA file, as with IoT Hub, whose servers
// send no root either. Node checks an IP host against IP SANs only and a name against DNS SANs only, so the
// server certificate carries both.
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export interface PemPair {
  cert: string;
  key: string;
}

function newRsaKeyPem(): string {
  // node:crypto generates keys in native code; node-forge's pure-JS generator takes seconds.
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function serialNumber(): string {
  // Positive (high bit clear), 16 bytes: unique enough that a regenerated CA never collides.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/** A certificate for `key`, valid from an hour ago (clock skew) for `validForMs`, with a fresh serial. */
function newCertificate(key: forge.pki.rsa.PrivateKey, validForMs: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + validForMs);
  return cert;
}

/**
 * A self-signed CA valid for ten years. Its name carries a random suffix: a process that trusts several
 * emulators' CAs (tests, the demo) would otherwise hold CAs with one name, and TLS verification may then
 * pick the wrong one and fail with a signature error.
 */
export function generateCa(commonName = `iotedge-operator hub emulator CA ${randomBytes(4).toString('hex')}`): PemPair {
  const keyPem = newRsaKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = newCertificate(key, 10 * 365 * 86400_000);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

/** Checks that a given pair is a usable CA; throws with the reason. */
export function checkCa(ca: PemPair): void {
  const x509 = new X509Certificate(ca.cert);
  if (!x509.ca) throw new Error('the --ca-cert certificate is not a CA (basicConstraints CA:false)');
  const key = forge.pki.privateKeyFromPem(ca.key);
  const pub = forge.pki.certificateFromPem(ca.cert).publicKey as forge.pki.rsa.PublicKey;
  if (pub.n.compareTo(key.n) !== 0) throw new Error('the --ca-key does not belong to the --ca-cert certificate');
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** A server certificate signed by `ca` for the given IP addresses and DNS names, valid for a year. */
export function issueServerCertificate(ca: PemPair, names: readonly string[]): PemPair {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keyPem = newRsaKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = newCertificate(key, 365 * 86400_000);
  const first = names.find((n) => !isIp(n)) ?? names[0] ?? 'localhost';
  cert.setSubject([{ name: 'commonName', value: first }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((n) => (isIp(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

/**
 * An intermediate CA signed by `ca`, valid for a year (never past `ca` itself), allowed to sign end-entity
 * certificates only (pathLen 0). Its name carries a random suffix for the reason generateCa's does.
 */
export function issueIntermediateCa(ca: PemPair, commonName = `iotedge-operator hub emulator intermediate ${randomBytes(4).toString('hex')}`): PemPair {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keyPem = newRsaKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = newCertificate(key, 365 * 86400_000);
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

/**
 * What the emulator's listeners serve: a server certificate for `names` from a fresh intermediate of `ca`.
 * `cert` holds the leaf then the intermediate (the chain a TLS server sends), without the root.
 */
export function issueServerChain(ca: PemPair, names: readonly string[]): PemPair {
  const intermediate = issueIntermediateCa(ca);
  const leaf = issueServerCertificate(intermediate, names);
  return { cert: `${leaf.cert}${intermediate.cert}`, key: leaf.key };
}
