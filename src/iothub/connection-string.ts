// IoT Hub connection strings: the binding Secret holds a device one (the operator then manages the
// $edgeAgent and $edgeHub identities' keys itself) or a $edgeAgent module one. Parsing is strict and
// never echoes a key in an error.

export interface HubCredentials {
  hostName: string;
  deviceId: string;
  /** Set for a module connection string; only $edgeAgent is accepted. */
  moduleId?: string;
  sharedAccessKey: string;
  /** Where MQTT actually dials (host[:port]); the SAS and the MQTT username still use hostName. */
  gatewayHostName?: string;
}

export class ConnectionStringError extends Error {
  override name = 'ConnectionStringError';
}

const known = new Set(['HostName', 'DeviceId', 'ModuleId', 'SharedAccessKey', 'GatewayHostName']);

/** Parses `HostName=…;DeviceId=…[;ModuleId=$edgeAgent];SharedAccessKey=…[;GatewayHostName=…]`. */
export function parseConnectionString(text: string): HubCredentials {
  const fields = new Map<string, string>();
  for (const part of text.trim().split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConnectionStringError(`connection string part "${part.slice(0, 16)}…" is not Name=value`);
    const name = part.slice(0, eq);
    // SharedAccessKeyName marks a hub policy (service) string; the binding needs a device's own identity.
    if (name === 'SharedAccessKeyName') throw new ConnectionStringError('the connection string is a service (policy) connection string; the binding needs a device or $edgeAgent module connection string');
    if (name === 'x509') throw new ConnectionStringError('x509 connection strings are not supported; use a SharedAccessKey');
    if (!known.has(name)) continue;
    fields.set(name, part.slice(eq + 1));
  }
  const required = (name: string): string => {
    const value = fields.get(name);
    if (!value) throw new ConnectionStringError(`the connection string has no ${name}`);
    return value;
  };
  const moduleId = fields.get('ModuleId');
  if (moduleId !== undefined && moduleId !== '$edgeAgent') {
    throw new ConnectionStringError(`the connection string is for module ${moduleId}; give the device's connection string or the $edgeAgent module's`);
  }
  const key = required('SharedAccessKey');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) throw new ConnectionStringError('the connection string SharedAccessKey is not base64');
  return {
    hostName: required('HostName'),
    deviceId: required('DeviceId'),
    ...(moduleId ? { moduleId } : {}),
    sharedAccessKey: key,
    ...(fields.get('GatewayHostName') ? { gatewayHostName: fields.get('GatewayHostName') } : {}),
  };
}

export { moduleConnectionString } from '../translate/identity.ts';
