// A GraphQL subscription over one websocket, spoken in the graphql-transport-ws protocol:
// connection_init (with the API key) -> connection_ack -> subscribe -> next... ; ping/pong both ways;
// reconnects with exponential backoff (and jitter) whenever the socket drops, and subscribes again.
// A refused key (close 4403) or an error message for the subscription is final: no reconnect.

export const PROTOCOL = 'graphql-transport-ws';
// Close codes of the protocol.
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_INIT_TIMEOUT = 4408;
const CLOSE_KEEPALIVE_TIMEOUT = 4499;

export function websocketUrl(path = '/graphql') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

export class GraphQLSubscription {
  /**
   * @param {object} options
   * @param {string} options.url                websocket URL
   * @param {() => string} options.authorization the Authorization value sent in connection_init
   * @param {string} options.query              the subscription document
   * @param {object} [options.variables]
   * @param {(data: object) => void} options.onNext
   * @param {(errors: object[], fatal: boolean) => void} [options.onError]
   * @param {(state: string, detail?: object) => void} [options.onState]
   *        connecting | live | reconnecting (detail.delayMs, detail.code) | refused (detail.reason) | failed | stopped
   */
  constructor(options) {
    this.options = {
      initialDelayMs: 500,
      maxDelayMs: 30000,
      ackTimeoutMs: 10000,
      pingEveryMs: 15000,
      pongTimeoutMs: 10000,
      variables: {},
      onError: () => {},
      onState: () => {},
      ...options,
    };
    this.socket = null;
    this.attempt = 0;
    this.sequence = 0;
    this.subscriptionId = null;
    this.stopped = true;
    this.retryTimer = null;
    this.onOnline = () => {
      if (this.retryTimer !== null) this.reconnectNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      if (socket.readyState === WebSocket.OPEN && this.subscriptionId) {
        socket.send(JSON.stringify({ id: this.subscriptionId, type: 'complete' }));
      }
      socket.close(1000, 'Normal Closure');
    }
    this.options.onState('stopped');
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.stopped && !this.socket) this.connect();
  }

  connect() {
    const { url, ackTimeoutMs } = this.options;
    this.retryTimer = null;
    this.options.onState('connecting', { attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(url, PROTOCOL);
    } catch (error) {
      this.scheduleReconnect(0);
      return;
    }
    this.socket = socket;
    const connection = { acked: false, fatal: false, pingTimer: null, pongTimer: null };
    const ackTimer = setTimeout(() => socket.close(CLOSE_INIT_TIMEOUT, 'Connection acknowledgement timeout'), ackTimeoutMs);
    const send = (message) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };

    socket.addEventListener('open', () => {
      send({ type: 'connection_init', payload: { Authorization: this.options.authorization() } });
    });

    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        socket.close(4400, 'Invalid message');
        return;
      }
      switch (message.type) {
        case 'connection_ack':
          clearTimeout(ackTimer);
          connection.acked = true;
          this.attempt = 0;
          this.subscriptionId = String(++this.sequence);
          send({
            id: this.subscriptionId,
            type: 'subscribe',
            payload: { query: this.options.query, variables: this.options.variables },
          });
          this.startKeepalive(socket, connection, send);
          this.options.onState('live');
          break;
        case 'ping':
          send(message.payload === undefined ? { type: 'pong' } : { type: 'pong', payload: message.payload });
          break;
        case 'pong':
          clearTimeout(connection.pongTimer);
          break;
        case 'next':
          if (message.id !== this.subscriptionId) break;
          if (message.payload?.errors?.length) this.options.onError(message.payload.errors, false);
          if (message.payload?.data) this.options.onNext(message.payload.data);
          break;
        case 'error':
          if (message.id !== this.subscriptionId) break;
          // The server refused the subscription itself (a bad argument, no permission): retrying repeats it.
          connection.fatal = true;
          this.options.onError(Array.isArray(message.payload) ? message.payload : [message.payload], true);
          socket.close(1000, 'Normal Closure');
          break;
        case 'complete':
          // The server ended the stream: subscribe again on a fresh connection, after the backoff.
          if (message.id === this.subscriptionId) socket.close(1000, 'Normal Closure');
          break;
        default:
          break;
      }
    });

    socket.addEventListener('close', (event) => {
      clearTimeout(ackTimer);
      clearInterval(connection.pingTimer);
      clearTimeout(connection.pongTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      this.subscriptionId = null;
      if (this.stopped) return;
      if (event.code === CLOSE_FORBIDDEN || event.code === CLOSE_UNAUTHORIZED) {
        this.stopped = true;
        this.options.onState('refused', { code: event.code, reason: event.reason });
        return;
      }
      if (connection.fatal) {
        this.stopped = true;
        this.options.onState('failed');
        return;
      }
      this.scheduleReconnect(event.code);
    });
  }

  startKeepalive(socket, connection, send) {
    const { pingEveryMs, pongTimeoutMs } = this.options;
    // A connection that silently died (a laptop waking up, a proxy dropping it) is noticed by a
    // ping left unanswered, and replaced.
    connection.pingTimer = setInterval(() => {
      send({ type: 'ping' });
      clearTimeout(connection.pongTimer);
      connection.pongTimer = setTimeout(() => socket.close(CLOSE_KEEPALIVE_TIMEOUT, 'Keepalive timeout'), pongTimeoutMs);
    }, pingEveryMs);
  }

  scheduleReconnect(code) {
    const { initialDelayMs, maxDelayMs } = this.options;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** this.attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.options.onState('reconnecting', { delayMs, code, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }
}
