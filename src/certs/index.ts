// X.509 for one edge device: its CA and edgeHub's server certificate (issue, renew, inspect).
export { checkIssuer, issueDeviceCa, issueServerCertificate, type KeyPairPem, type ServerCertificateInput, type Validity } from './issue.ts';
export { describeCertificate, isIssuedBy, keyMatchesCertificate, renewalTime, splitCertificates, type CertificateFacts } from './pem.ts';
