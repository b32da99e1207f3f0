// Issuing the per-device certificates with node-forge (a maintained X.509 library; no hand-written
// ASN.1): the device CA, and edgeHub's server certificate signed by it. forge lays the certificate out;
// node:crypto makes the keys (RSA 2048) and the RSA signature in native code, since forge's pure-JS
// big-number arithmetic takes seconds on a busy edge node.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';
import { describeCertificate, keyMatchesCertificate, splitCertificates } from './pem.ts';

export interface KeyPairPem {
  /** PEM certificate(s): the certificate first, then any chain. */
  cert: string;
  /** PEM private key (PKCS#8). */
  key: string;
}

export interface Validity {
  /** How long the certificate is valid from now. */
  lifetimeMs: number;
  /** The issuing time (tests); default now. */
  now?: Date;
}

/** Backdating covers clock skew between the operator and the pods, but never more than a tenth of the lifetime. */
const maxBackdateMs = 5 * 60_000;

/** forge writes CRLF line ends; PEM files in Secrets and mounts read better with LF. */
function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function newRsaKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** forge's cert.sign, with the signature made by node:crypto over the TBSCertificate forge has just encoded. */
function signCertificate(cert: forge.pki.Certificate, signerKeyPem: string): void {
  const nativeSigner = {
    sign: () => {
      const tbs = forge.asn1.toDer((cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate).getBytes();
      return sign('sha256', Buffer.from(tbs, 'binary'), signerKeyPem).toString('binary');
    },
  };
  cert.sign(nativeSigner as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
}

function serialNumber(): string {
  // Positive (high bit clear) and random, so a reissued certificate never repeats a serial.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function newCertificate(keyPem: string, validity: Validity): forge.pki.Certificate {
  if (!(validity.lifetimeMs > 0)) throw new Error(`certificate lifetime must be positive, got ${validity.lifetimeMs} ms`);
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const now = validity.now?.getTime() ?? Date.now();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now - Math.min(maxBackdateMs, validity.lifetimeMs / 10));
  cert.validity.notAfter = new Date(now + validity.lifetimeMs);
  return cert;
}

/** A self-signed CA that may sign end-entity certificates only (path length 0). */
export function issueDeviceCa(input: { commonName: string } & Validity): KeyPairPem {
  const keyPem = newRsaKeyPem();
  const cert = newCertificate(keyPem, input);
  const subject = [{ name: 'commonName', value: input.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, keyPem);
  return { cert: toPem(cert), key: keyPem };
}

export interface ServerCertificateInput extends Validity {
  /** The issuing CA: its certificate (plus any chain above it) and key. */
  ca: KeyPairPem;
  /** Subject alternative names; the first is also the common name. */
  dnsNames: readonly string[];
}

/** Checks that a CA pair can issue: a CA certificate whose key is the one given. Throws with the reason. */
export function checkIssuer(ca: KeyPairPem): void {
  const facts = describeCertificate(ca.cert);
  if (!facts.isCa) throw new Error(`certificate ${facts.subject} is not a CA (basicConstraints CA:FALSE)`);
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(ca.cert, ca.key);
  } catch (error) {
    throw new Error(`the CA private key cannot be read: ${(error as Error).message}`, { cause: error });
  }
  if (!matches) throw new Error(`the CA private key does not belong to certificate ${facts.subject}`);
  try {
    forge.pki.privateKeyFromPem(ca.key);
  } catch {
    throw new Error('the CA private key is not an RSA key; only RSA CAs can issue here');
  }
}

/**
 * A TLS server certificate signed by `ca`. `cert` is the leaf followed by the CA's certificates, as
 * edgeHub's EdgeHubDevServerCertificateFile wants (first = leaf, rest = chain).
 */
export function issueServerCertificate(input: ServerCertificateInput): KeyPairPem {
  const [first] = input.dnsNames;
  if (first === undefined) throw new Error('a server certificate needs at least one DNS name');
  checkIssuer(input.ca);
  const caChain = splitCertificates(input.ca.cert);
  const caCert = forge.pki.certificateFromPem(caChain[0]!);
  const keyPem = newRsaKeyPem();
  const cert = newCertificate(keyPem, input);
  cert.setSubject([{ name: 'commonName', value: first }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: input.dnsNames.map((value) => ({ type: 2, value })) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  signCertificate(cert, input.ca.key);
  return { cert: toPem(cert) + caChain.join(''), key: keyPem };
}
