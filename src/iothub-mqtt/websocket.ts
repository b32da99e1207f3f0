// IoT Hub's WebSocket endpoint, `/$iothub/websocket` on the HTTPS port, where the SDKs' `MqttWs` (subprotocol
// `mqtt`) and `AmqpWs` (subprotocol `AMQPWSB10`) transports connect when 8883/5671 are blocked. It lives in
// this layer, not in the emulator, so the built-in edge hub can serve MqttWs through the same broker later:
// the caller names the subprotocols it speaks and what serves each one.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

export const iotHubWebSocketPath = '/$iothub/websocket';
export const mqttSubprotocol = 'mqtt';

/** Serves one accepted WebSocket whose subprotocol this handler was registered for. */
export type WebSocketHandler = (socket: WebSocket, request: IncomingMessage) => void;

export interface WebSocketEndpointOptions {
  /** Subprotocol name (as the client offers it) → what serves it. */
  protocols: Record<string, WebSocketHandler>;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** A handler that gives an MQTT broker the WebSocket as a byte stream (MQTT packets ride in binary frames). */
export function mqttOverWebSocket(handle: (stream: Duplex) => void): WebSocketHandler {
  return (socket) => handle(createWebSocketStream(socket));
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Accepts WebSocket upgrades on `server` at `/$iothub/websocket` for the registered subprotocols. Other paths get
 * 404 and an unknown subprotocol 400, as a hub answers them. Returns a function that closes every accepted socket.
 */
export function serveIotHubWebSockets(server: HttpServer | HttpsServer, options: WebSocketEndpointOptions): () => void {
  const wss = new WebSocketServer({
    noServer: true,
    // Nothing above MQTT's and AMQP's own maximums is needed; ws's default (100 MiB) is far more than a hub takes.
    maxPayload: 1024 * 1024,
    handleProtocols: (offered) => [...offered].find((p) => p in options.protocols) ?? false,
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== iotHubWebSocketPath) return refuseUpgrade(socket, 404, 'Not Found');
    const offered = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const protocol = offered.find((p) => p in options.protocols);
    if (protocol === undefined) {
      options.log('WebSocket refused: no supported subprotocol', { offered: offered.join(',') });
      return refuseUpgrade(socket, 400, 'Bad Request');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', (error) => options.log('WebSocket error', { protocol, error: error.message }));
      options.protocols[protocol]?.(ws, request);
    });
  });
  return () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}
