// The hub's one TLS listener. Every client shows its protocol in its first bytes after the TLS
// handshake: MQTT starts with a CONNECT packet (0x10), AMQP with "AMQP", MQTT or AMQP over WebSockets
// with an HTTP request. Only MQTT is served; the others are refused with a log line and a metric that
// name the protocol, and WebSocket clients also get an HTTP 501 saying why, so a module configured for
// AMQP or WebSockets fails with a reason instead of a silent timeout. The Service maps 5671 and 443
// here too, for exactly that reason.
import { createServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';

export type ClientProtocol = 'mqtt' | 'amqp' | 'websocket' | 'unknown';

export function sniffProtocol(first: Buffer): ClientProtocol {
  if (first.length === 0) return 'unknown';
  if (first[0] === 0x10) return 'mqtt';
  const head = first.subarray(0, 8).toString('latin1');
  if (head.startsWith('AMQP')) return 'amqp';
  if (/^(GET|POST|PUT|HEAD|OPTIONS) /.test(head)) return 'websocket';
  return 'unknown';
}

export const unsupportedProtocolMessage =
  'the built-in edge hub of iotedge-operator speaks MQTT 3.1.1 over TLS on port 8883 only; AMQP and MQTT/AMQP over WebSockets are not supported yet: use the MQTT transport (azure-iot-device-mqtt Mqtt, UpstreamProtocol=Mqtt)';

export interface ListenerOptions {
  cert: string;
  key: string;
  onMqtt: (socket: TLSSocket) => void;
  onRefused: (protocol: Exclude<ClientProtocol, 'mqtt'>, remote: string) => void;
  onTlsError: (error: Error) => void;
}

export function createHubListener(options: ListenerOptions): { server: Server; sockets: Set<TLSSocket> } {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const protocol = sniffProtocol(first);
      if (protocol === 'mqtt') {
        socket.unshift(first);
        options.onMqtt(socket);
        return;
      }
      options.onRefused(protocol, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
      if (protocol === 'websocket') {
        const body = `${unsupportedProtocolMessage}\n`;
        socket.end(`HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      } else {
        socket.destroy();
      }
    });
  });
  server.on('tlsClientError', (error) => options.onTlsError(error));
  return { server, sockets };
}
