// The emulator's `/$iothub/websocket` endpoint on its HTTPS port: MQTT over WebSockets (the device SDK's
// `MqttWs`) served by the same broker as MQTT over TLS on 8883, so both transports share one dialect,
// one session table and one set of admin faults. The endpoint itself is src/iothub-mqtt/websocket.ts.
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { mqttOverWebSocket, mqttSubprotocol, serveIotHubWebSockets } from '../iothub-mqtt/websocket.ts';
import type { WebSocketHandler } from '../iothub-mqtt/websocket.ts';

export interface EmulatorWebSocketOptions {
  /** Serves one MQTT connection (the broker that also serves 8883). */
  mqtt: (stream: Duplex) => void;
  /** Further subprotocols (such as AMQP's `AMQPWSB10`), by name. */
  extra?: Record<string, WebSocketHandler>;
  /** Decides whether to close a new connection at once (the admin `tcp-close` refusal fault). */
  refuse: () => boolean;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Starts answering WebSocket upgrades on the emulator's HTTPS server; returns a function that closes them all. */
export function serveEmulatorWebSockets(server: HttpsServer, options: EmulatorWebSocketOptions): () => void {
  const mqtt = mqttOverWebSocket((stream) => options.mqtt(stream));
  return serveIotHubWebSockets(server, {
    protocols: {
      [mqttSubprotocol]: (socket, request) => {
        if (options.refuse()) {
          options.log('WebSocket connection closed (admin fault: refuse tcp-close)');
          socket.terminate();
          return;
        }
        mqtt(socket, request);
      },
      ...options.extra,
    },
    log: options.log,
  });
}
