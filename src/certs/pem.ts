// PEM helpers over Node's own X.509 parser: split bundles, read the facts the operator decides on
// (validity, names, fingerprints), and check that a leaf chains to a CA. Nothing here parses ASN.1.
import { createPrivateKey, X509Certificate } from 'node:crypto';

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle, in order, each ending with a newline. */
export function splitCertificates(pem: string): string[] {
  return (pem.match(certificateBlock) ?? []).map((block) => `${block}\n`);
}

export interface CertificateFacts {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names of the subjectAltName extension. */
  dnsNames: string[];
  isCa: boolean;
  /** SHA-256 fingerprint, hex without colons, lowercase. */
  sha256: string;
}

/** The facts of the first certificate of `pem`; throws when it holds none. */
export function describeCertificate(pem: string): CertificateFacts {
  const first = splitCertificates(pem)[0];
  if (!first) throw new Error('no PEM certificate found');
  const x509 = new X509Certificate(first);
  return {
    subject: x509.subject,
    issuer: x509.issuer,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    dnsNames: dnsNamesOf(x509),
    isCa: x509.ca,
    sha256: x509.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

function dnsNamesOf(x509: X509Certificate): string[] {
  // Node renders the extension as `DNS:a, DNS:b, IP Address:…`; DNS names cannot hold ", ".
  return (x509.subjectAltName ?? '').split(', ').filter((entry) => entry.startsWith('DNS:')).map((entry) => entry.slice('DNS:'.length));
}

/**
 * When to replace a certificate: two thirds into its validity. edgeHub exits about 2.5 minutes before
 * NotAfter; renewing at 2/3 leaves a third of the lifetime for retries and restarts.
 */
export function renewalTime(pem: string): Date {
  const { notBefore, notAfter } = describeCertificate(pem);
  return new Date(notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3);
}

/** True when the first certificate of `leafPem` is signed by the first of `caPem` and names it as issuer. */
export function isIssuedBy(leafPem: string, caPem: string): boolean {
  const leaf = splitCertificates(leafPem)[0];
  const ca = splitCertificates(caPem)[0];
  if (!leaf || !ca) return false;
  const caCert = new X509Certificate(ca);
  const leafCert = new X509Certificate(leaf);
  return leafCert.checkIssued(caCert) && leafCert.verify(caCert.publicKey);
}

/** True when the private key in `keyPem` belongs to the first certificate of `certPem`. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  const first = splitCertificates(certPem)[0];
  if (!first) return false;
  return new X509Certificate(first).checkPrivateKey(createPrivateKey(keyPem));
}
