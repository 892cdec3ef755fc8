/**
 * The PostgreSQL worker thread, as source text: `new Worker(source, { eval: true })` runs it the same way
 * under vitest (TypeScript sources) and from dist/ (tsc output), with no second build entry. Plain
 * CommonJS JavaScript; `pg` is required by the absolute path the caller resolved.
 *
 * Protocol: the caller posts a request on `port` and sleeps in Atomics.wait on `ctrl[0]`; the worker posts
 * the answer, then increments `ctrl[0]` and notifies. `ctrl[1]` is 1 while connected, 0 while the
 * connection is down (the caller fails at once instead of waiting), `ctrl[2]` counts the connections lost;
 * the worker reconnects with the delays
 * it was given (the caller computes them with the shared backoff helper).
 *
 * One connection, because the caller is synchronous: it never has two statements in flight.
 */
export const pgWorkerSource = `
'use strict';
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
// BIGINT (epoch ms, ids, counts) and NUMERIC come back as JavaScript numbers, as SQLite gives them.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

const ctrl = new Int32Array(workerData.shared);
const port = workerData.port;
const delays = workerData.reconnectDelaysMs;
let client = null;
let txClient = null;
let retry = 0;
let timer = null;
let closing = false;
let lastError = 'not connected yet';
const names = new Map();
// Never reused: a name pg has seen once stays bound to its text on that connection.
let nextName = 0;

function answer(msg) {
  port.postMessage(msg);
  Atomics.add(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
}

function errorOf(err, unavailable) {
  return {
    message: (err && err.message) || String(err),
    code: err && typeof err.code === 'string' ? err.code : undefined,
    unavailable: Boolean(unavailable),
  };
}

async function connect() {
  const c = new pg.Client({
    connectionString: workerData.url,
    statement_timeout: workerData.statementTimeoutMs,
    query_timeout: workerData.statementTimeoutMs + 1000,
    connectionTimeoutMillis: workerData.connectTimeoutMs,
    application_name: 'gpu-medic',
    // The first probe of an idle connection goes out 30 s in, not after the kernel's default two hours: a
    // server or NAT that lost the connection answers it with a reset. A peer that answers nothing at all is
    // given up after the kernel's retries (Node sets only the idle time; Linux then waits 9 x 75 s).
    keepAlive: true,
    keepAliveInitialDelayMillis: 30000,
  });
  c.on('error', (err) => lost(c, err));
  c.on('end', () => lost(c, new Error('the connection was closed')));
  try {
    await c.connect();
    if (workerData.searchPath) await c.query('SET search_path TO ' + workerData.searchPath);
  } catch (err) {
    c.removeAllListeners('end');
    c.end().catch(() => {});
    throw err;
  }
  client = c;
  names.clear();
  nextName = 0;
  retry = 0;
  Atomics.store(ctrl, 1, 1);
}

function lost(c, err) {
  if (c !== client) return;
  client = null;
  lastError = (err && err.message) || String(err);
  Atomics.store(ctrl, 1, 0);
  Atomics.add(ctrl, 2, 1);
  c.end().catch(() => {});
  scheduleReconnect();
}

function scheduleReconnect() {
  if (timer || closing || client) return;
  const delay = delays[Math.min(retry, delays.length - 1)];
  retry++;
  timer = setTimeout(() => {
    timer = null;
    connect().catch((err) => {
      lastError = (err && err.message) || String(err);
      scheduleReconnect();
    });
  }, delay);
}

function unavailable() {
  return { message: 'the database is unavailable (' + lastError + ')', code: 'STORE_UNAVAILABLE', unavailable: true };
}

function nameFor(sql) {
  let name = names.get(sql);
  if (!name) {
    name = 'gm' + nextName++;
    names.set(sql, name);
  }
  return name;
}

async function handle(req) {
  if (req.op === 'connect') {
    await connect();
    return {};
  }
  if (req.op === 'close') {
    closing = true;
    if (timer) clearTimeout(timer);
    const c = client;
    client = null;
    Atomics.store(ctrl, 1, 0);
    if (c) await c.end().catch(() => {});
    return {};
  }
  if (req.op === 'drop') {
    // The caller gave up waiting: a connection that hangs is dropped and made again.
    if (client) lost(client, new Error(req.reason || 'dropped by the caller'));
    return {};
  }
  if (req.op === 'state') return { connected: client !== null, lastError };
  // A statement of a transaction whose connection is gone must not run on the new one.
  if (req.tx === 'begin') {
    if (!client) throw unavailable();
    txClient = client;
  } else if (req.tx === 'in' || req.tx === 'end') {
    if (!client || client !== txClient) {
      if (req.tx === 'end') txClient = null;
      if (req.rollback) return { rows: [], rowCount: 0 };
      throw { message: 'the connection was lost inside a transaction; it was rolled back', code: 'STORE_UNAVAILABLE', unavailable: true };
    }
    if (req.tx === 'end') txClient = null;
  } else if (!client) {
    throw unavailable();
  }
  const c = client;
  let res;
  if (req.values) {
    try {
      res = await c.query({ name: nameFor(req.sql), text: req.sql, values: req.values });
    } catch (err) {
      // 0A000 "cached plan must not change result type": another process altered a table this statement
      // reads with * since it was prepared; every later execution of that name fails the same way. Prepare
      // it again under a new name. Retried only outside a transaction: inside one, PostgreSQL has already
      // aborted the transaction, so the caller gets the error (and the next call prepares afresh).
      if (!err || err.code !== '0A000' || !names.has(req.sql)) throw err;
      names.delete(req.sql);
      if (req.tx || c !== client) throw err;
      res = await c.query({ name: nameFor(req.sql), text: req.sql, values: req.values });
    }
  } else {
    res = await c.query(req.sql);
  }
  const last = Array.isArray(res) ? res[res.length - 1] : res;
  return {
    rows: last ? last.rows : [],
    rowCount: last && last.rowCount !== null ? last.rowCount : 0,
    command: last ? last.command : undefined,
  };
}

let chain = Promise.resolve();
port.on('message', (req) => {
  chain = chain.then(async () => {
    try {
      const out = await handle(req);
      answer({ id: req.id, ok: true, ...out });
    } catch (err) {
      if (err && err.unavailable) return answer({ id: req.id, ok: false, error: err });
      // A failure of the connection itself (reset, timeout) rather than of the statement.
      const code = err && typeof err.code === 'string' ? err.code : '';
      const text = (err && err.message) || '';
      // FATAL and PANIC end the session: a terminated backend or a server shutting down (57P01-57P05), a
      // failover, a broken connection (class 08). The server said so before closing the socket.
      const fatal = Boolean(err && (err.severity === 'FATAL' || err.severity === 'PANIC')) || /^(08|57P0)/.test(code);
      // Any other answer of the server (a constraint, a statement timeout) leaves the connection up.
      const fromServer = Boolean(err && err.severity) && !fatal;
      const down = fatal || (!fromServer && (/^E[A-Z]+$/.test(code) || /terminated|timeout|not queryable|ended/i.test(text)));
      if (down && req.op === 'query' && client) lost(client, err);
      answer({ id: req.id, ok: false, error: errorOf(err, down) });
    }
  });
});
`;
