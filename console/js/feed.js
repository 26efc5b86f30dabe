// FeedClient: the change feed (SPEC §3.3) as a resumable stream. It
// subscribes with after_seq = the highest seq it has seen (an event's seq or
// a heartbeat's position), so a reconnect, including one after a server
// restart, continues with the next event: no gap, no duplicate. Events at or
// below that point are dropped should a server ever resend them.
//
// States reported to onState: 'connecting', 'catching-up' (subscribed, not yet
// at the head), 'live', 'reconnecting' (waiting to retry), 'stopped'.
const kFirstRetryMs = 1000;
const kMaxRetryMs = 8000;

export class FeedClient {
  // urlFor: async () => WebSocket URL (signed afresh for every attempt).
  constructor({ urlFor, afterSeq, filter = {}, onEvent, onState, onResume }) {
    this.urlFor = urlFor;
    this.position = afterSeq;
    this.filter = filter;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResume = onResume || (() => {});
    this.retryMs = kFirstRetryMs;
    this.stopped = false;
    this.connections = 0;
  }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.onState('stopped');
  }

  async connect() {
    if (this.stopped) return;
    this.onState('connecting');
    let url;
    try {
      url = await this.urlFor();
    } catch (e) {
      return this.retry();
    }
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.connections += 1;
      this.resumedFrom = this.position;
      this.caughtUp = 0;
      ws.send(JSON.stringify({ op: 'subscribe', after_seq: this.position, filter: this.filter }));
      this.onState('catching-up');
    };
    ws.onmessage = (m) => this.frame(JSON.parse(m.data));
    ws.onclose = () => {
      if (this.ws === ws) this.retry();
    };
  }

  frame(f) {
    if (f.kind === 'event') {
      const seq = f.event.seq;
      if (seq <= this.position) return;
      this.position = seq;
      this.caughtUp += 1;
      this.onEvent(f.event);
    } else if (f.kind === 'heartbeat') {
      this.position = Math.max(this.position, f.position);
    } else if (f.kind === 'live') {
      this.retryMs = kFirstRetryMs;
      if (this.connections > 1) this.onResume({ from: this.resumedFrom, events: this.caughtUp, head: f.head });
      this.onState('live');
    } else if (f.kind === 'error') {
      this.stopped = true;  // bad credentials or filter: retrying cannot help
      this.onState('error', `${f.code}: ${f.message}`);
    }
  }

  retry() {
    if (this.stopped) return;
    this.onState('reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, kMaxRetryMs);
  }
}
