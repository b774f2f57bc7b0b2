// Benchmark worker for AWS's official JS v3 client, @aws-sdk/client-polly (Node, HTTP/2).
//
// Run by benchmarks/run.py with `node`, same protocol as the Python workers
// (benchmarks/workers/worker_common.py): a {"event": "ready"} line once the SDK is
// loaded, then one JSON result line per JSON job line on stdin.
//
// The SDK comes from tests/interop/node/node_modules (`make setup-interop`), or
// the directory in POLLY_BENCH_NODE_DIR. The emulator's CA is trusted through
// NODE_EXTRA_CA_CERTS (read by Node at start-up). Polly's default handler is
// HTTP/1.1, which cannot carry the duplex stream, so NodeHttp2Handler is given
// explicitly. That handler opens an isolated HTTP/2 session (a new TLS
// connection) for every event-stream request: even a "warm" client pays a
// handshake per stream. Client CPU is process.cpuUsage() (the whole process,
// libuv's threads included); the emulator's CPU is read from /proc.
//
// Voice-agent kinds (same measurements as worker_common.py's): "incremental"
// feeds the ActionStream from an async generator that hands over one word per
// deadline; "bargein" stops a stream with an AbortController on the command
// (the SDK's only way: NodeHttp2Handler then closes the HTTP/2 stream and
// destroys its isolated session).

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const nodeDir =
  process.env.POLLY_BENCH_NODE_DIR ??
  fileURLToPath(new URL("../../tests/interop/node/", import.meta.url));
const require = createRequire(join(nodeDir, "package.json"));
const { PollyClient, StartSpeechSynthesisStreamCommand } = require("@aws-sdk/client-polly");
const { NodeHttp2Handler } = require("@smithy/node-http-handler");

function packageVersion(name) {
  const file = join(nodeDir, "node_modules", name, "package.json");
  return JSON.parse(readFileSync(file, "utf8")).version;
}

function cpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function processCpuSeconds(pid, clkTck) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "ascii");
    const fields = stat.slice(stat.lastIndexOf(")") + 1).trim().split(/\s+/);
    return (Number(fields[11]) + Number(fields[12])) / clkTck;
  } catch {
    return null;
  }
}

function describe(err) {
  const name = err?.name ?? "Error";
  const message = String(err?.message ?? err).split("\n")[0].slice(0, 160);
  return message ? `${name}: ${message}` : name;
}

function makeClient(job) {
  return new PollyClient({
    region: job.region,
    endpoint: job.endpoint_url,
    credentials: { accessKeyId: job.access_key_id, secretAccessKey: job.secret_access_key },
    maxAttempts: 1, // count errors, never hide them behind retries
    requestHandler: new NodeHttp2Handler({ requestTimeout: 30000, sessionTimeout: 30000 }),
  });
}

function command(job, texts) {
  async function* actions() {
    if (Array.isArray(texts)) {
      for (const text of texts) yield { TextEvent: { Text: text } };
    } else {
      for await (const text of texts) yield { TextEvent: { Text: text } };
    }
    yield { CloseStreamEvent: {} };
  }
  return new StartSpeechSynthesisStreamCommand({
    Engine: "generative",
    VoiceId: job.voice_id,
    OutputFormat: job.output_format,
    SampleRate: job.sample_rate,
    ActionStream: actions(),
  });
}

// texts: an array, or an async iterable of words handed over as they come.
async function synthesize(client, job, texts, onAudio, abortSignal) {
  const response = await client.send(command(job, texts), { abortSignal });
  for await (const event of response.EventStream) {
    if (event.AudioEvent) onAudio(event.AudioEvent.AudioChunk ?? new Uint8Array());
  }
}

// One stream with timing, a byte check and a timeout; never hangs, never throws.
async function oneStream(
  client,
  job,
  texts,
  expectedBytes,
  { fresh = false, onFirstAudio = null } = {},
) {
  let received = 0;
  let chunks = 0;
  let ttfa = null;
  let cpuFirst = null;
  const cpuStart = cpuSeconds();
  const started = performance.now();
  const onAudio = (chunk) => {
    if (ttfa === null && chunk.length) {
      ttfa = performance.now() - started;
      cpuFirst = (cpuSeconds() - cpuStart) * 1000;
      if (onFirstAudio !== null) onFirstAudio();
    }
    received += chunk.length;
    chunks += 1;
  };
  const limitMs = Number(job.stream_timeout_s) * 1000;
  const abort = new AbortController();
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve("timeout");
    }, limitMs);
  });
  let error = null;
  let own = null;
  try {
    const work = (async () => {
      if (fresh) own = client = makeClient(job);
      await synthesize(client, job, texts, onAudio, abort.signal);
      return "done";
    })();
    work.catch(() => {}); // a late failure after a timeout is already counted
    if ((await Promise.race([work, expired])) === "timeout") {
      error = `timeout after ${job.stream_timeout_s} s`;
    }
  } catch (err) {
    error = describe(err);
  } finally {
    clearTimeout(timer);
  }
  const total = performance.now() - started;
  if (own !== null) own.destroy();
  if (error === null && received !== expectedBytes) {
    error = `wrong audio size: ${received} bytes, expected ${expectedBytes}`;
  }
  return {
    ttfa_ms: ttfa,
    total_ms: total,
    audio_bytes: received,
    chunks,
    cpu_to_first_audio_ms: cpuFirst,
    error,
  };
}

// Voice-agent scenarios --------------------------------------------------------

// This process's TCP sockets connected to `port` (inode numbers), from /proc.
function emulatorSockets(port) {
  const inodes = new Set();
  try {
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        const link = readlinkSync(`/proc/self/fd/${fd}`);
        if (link.startsWith("socket:[")) inodes.add(Number(link.slice(8, -1)));
      } catch {
        // the fd closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const found = new Set();
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let rows;
    try {
      rows = readFileSync(table, "ascii").trim().split("\n").slice(1);
    } catch {
      continue;
    }
    for (const row of rows) {
      const fields = row.trim().split(/\s+/);
      const remotePort = Number.parseInt(fields[2].split(":").pop(), 16);
      const inode = Number(fields[9]);
      if (remotePort === port && inodes.has(inode)) found.add(inode);
    }
  }
  return found;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs body(abortController) under the stream timeout; [error, value].
async function limited(job, body) {
  const abort = new AbortController();
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve("timeout");
    }, Number(job.stream_timeout_s) * 1000);
  });
  try {
    const work = body(abort);
    work.catch(() => {}); // a late failure after a timeout is already counted
    const outcome = await Promise.race([work.then((value) => ({ value })), expired]);
    if (outcome === "timeout") return [`timeout after ${job.stream_timeout_s} s`, null];
    return [null, outcome.value];
  } catch (err) {
    return [describe(err), null];
  } finally {
    clearTimeout(timer);
  }
}

// Words handed over at absolute deadlines (start + k x interval); see
// worker_common.paced_stream for what is measured and how chunks are attributed.
async function pacedStream(client, job, words, sentenceBytes) {
  const interval = Number(job.word_interval_s) * 1000;
  const ends = new Set(job.sentence_end_words);
  const expected = sentenceBytes.reduce((a, b) => a + b, 0);
  const starts = sentenceBytes.map((_, k) => sentenceBytes.slice(0, k).reduce((a, b) => a + b, 0));
  const sent = [];
  const firsts = [];
  let slip = 0;
  let received = 0;
  let chunks = 0;
  let ttfa = null;
  const started = performance.now();
  async function* source() {
    for (let k = 0; k < words.length; k += 1) {
      const deadline = started + k * interval;
      const delay = deadline - performance.now();
      if (delay > 0) await sleep(delay);
      const now = performance.now();
      slip = Math.max(slip, now - deadline);
      if (ends.has(k)) sent.push(now);
      yield words[k];
    }
  }
  const onAudio = (chunk) => {
    if (!chunk.length) return;
    const now = performance.now();
    if (ttfa === null) ttfa = now - started;
    const end = received + chunk.length;
    while (firsts.length < starts.length && starts[firsts.length] < end) firsts.push(now);
    received = end;
    chunks += 1;
  };
  let [error] = await limited(job, (abort) =>
    synthesize(client, job, source(), onAudio, abort.signal),
  );
  const total = performance.now() - started;
  let latencies = [];
  if (error === null && received !== expected) {
    error = `wrong audio size: ${received} bytes, expected ${expected}`;
  } else if (error === null && (sent.length !== starts.length || firsts.length !== starts.length)) {
    error = `${sent.length} sentence ends sent, ${firsts.length} sentences heard, of ${starts.length}`;
  } else if (error === null) {
    latencies = firsts.map((at, k) => at - sent[k]);
    if (Math.min(...latencies) < 0) {
      error = "audio of a sentence arrived before its last word was sent";
      latencies = [];
    }
  }
  return {
    ttfa_ms: ttfa,
    total_ms: total,
    audio_bytes: received,
    chunks,
    cpu_to_first_audio_ms: null,
    error,
    sentence_latency_ms: latencies,
    schedule_slip_max_ms: slip,
  };
}

// Barge in at the first audio chunk (abort), then the next call; see
// worker_common.one_barge_in.
async function oneBargeIn(client, job, port, seen) {
  const full = Number(job.long_bytes);
  const marks = {};
  let received = 0;
  let chunks = 0;
  let after = 0;
  let ttfa = null;
  const started = performance.now();
  let [error] = await limited(job, async (abort) => {
    const response = await client.send(command(job, job.long_texts), {
      abortSignal: abort.signal,
    });
    try {
      for await (const event of response.EventStream) {
        if (!event.AudioEvent) continue;
        const chunk = event.AudioEvent.AudioChunk ?? new Uint8Array();
        received += chunk.length;
        chunks += 1;
        if (marks.cancel !== undefined) {
          after += chunk.length;
        } else if (chunk.length) {
          ttfa = performance.now() - started;
          for (const socket of emulatorSockets(port)) seen.add(socket);
          marks.cancel = performance.now();
          abort.abort();
        }
      }
    } catch (err) {
      // After abort() the iteration ends quietly here (SDK 3.x); an AbortError
      // would be the stop too, not a failure.
      if (marks.cancel === undefined || err?.name !== "AbortError") throw err;
    }
    marks.closed = performance.now();
  });
  if (error === null) {
    if (ttfa === null) error = "no audio: nothing to barge in on";
    else if (received > full) error = `wrong audio size: ${received} bytes, at most ${full} expected`;
  }
  const following = await oneStream(client, job, job.texts, Number(job.expected_bytes), {
    onFirstAudio: () => {
      for (const socket of emulatorSockets(port)) seen.add(socket);
    },
  });
  if (error === null && following.error !== null) error = `next call: ${following.error}`;
  return {
    ttfa_ms: ttfa,
    total_ms: (marks.closed ?? performance.now()) - started,
    audio_bytes: received,
    chunks,
    cpu_to_first_audio_ms: null,
    error,
    cancel_to_closed_ms:
      marks.cancel !== undefined && marks.closed !== undefined ? marks.closed - marks.cancel : null,
    cancel_to_lease_free_ms: null,
    audio_after_cancel_bytes: after,
    next_ttfa_ms: following.ttfa_ms,
  };
}

async function measured(job, body) {
  const pid = Number(job.emulator_pid);
  const tck = Number(job.clk_tck);
  const server0 = processCpuSeconds(pid, tck);
  const cpu0 = cpuSeconds();
  const wall0 = performance.now();
  const value = await body();
  const span = {
    wall_s: (performance.now() - wall0) / 1000,
    cpu_s: cpuSeconds() - cpu0,
    main_cpu_s: null,
    server_cpu_s: null,
  };
  const server1 = processCpuSeconds(pid, tck);
  if (server0 !== null && server1 !== null) span.server_cpu_s = server1 - server0;
  return [span, value];
}

function result(job, span, streams, warmup) {
  return {
    id: job.id,
    kind: job.kind,
    ok: true,
    ...span,
    streams,
    warmup_errors: warmup.map((w) => w.error).filter((e) => e !== null),
  };
}

async function sequential(count, run) {
  const out = [];
  for (let i = 0; i < count; i += 1) out.push(await run());
  return out;
}

const scenarios = {
  async warm(job) {
    const client = makeClient(job);
    const expected = Number(job.expected_bytes);
    try {
      const warmup = await sequential(job.warmup, () => oneStream(client, job, job.texts, expected));
      const [span, streams] = await measured(job, () =>
        sequential(job.streams, () => oneStream(client, job, job.texts, expected)),
      );
      return result(job, span, streams, warmup);
    } finally {
      client.destroy();
    }
  },

  async cold(job) {
    const expected = Number(job.expected_bytes);
    const run = () => oneStream(null, job, job.texts, expected, { fresh: true });
    const warmup = await sequential(job.warmup, run);
    const [span, streams] = await measured(job, () => sequential(job.streams, run));
    return result(job, span, streams, warmup);
  },

  async concurrency(job) {
    const level = Number(job.concurrency);
    const expected = Number(job.expected_bytes);
    const client = makeClient(job);
    try {
      const warmup = await Promise.all(
        Array.from({ length: level }, () => oneStream(client, job, job.texts, expected)),
      );
      let remaining = Number(job.streams);
      const streams = [];
      const lane = async () => {
        while (remaining > 0) {
          remaining -= 1;
          streams.push(await oneStream(client, job, job.texts, expected));
        }
      };
      const [span] = await measured(job, () =>
        Promise.all(Array.from({ length: level }, lane)),
      );
      return result(job, span, streams, warmup);
    } finally {
      client.destroy();
    }
  },

  async incremental(job) {
    const client = makeClient(job);
    const first = Number(job.sentence_end_words[0]) + 1;
    try {
      const warmup = [
        await pacedStream(client, job, job.words.slice(0, first), job.sentence_bytes.slice(0, 1)),
      ];
      const [span, streams] = await measured(job, () =>
        sequential(job.streams, () => pacedStream(client, job, job.words, job.sentence_bytes)),
      );
      return result(job, span, streams, warmup);
    } finally {
      client.destroy();
    }
  },

  async bargein(job) {
    const client = makeClient(job);
    const port = Number(new URL(job.endpoint_url).port);
    const seen = new Set();
    try {
      const warmup = [
        await oneStream(client, job, job.texts, Number(job.expected_bytes)),
        await oneBargeIn(client, job, port, new Set()),
      ];
      const before = emulatorSockets(port);
      const [span, streams] = await measured(job, () =>
        sequential(job.streams, () => oneBargeIn(client, job, port, seen)),
      );
      return {
        ...result(job, span, streams, warmup),
        new_connections: [...seen].filter((socket) => !before.has(socket)).length,
        connections_seen: seen.size,
        connections_opened_by_client: null,
      };
    } finally {
      client.destroy();
    }
  },

  async long(job) {
    const client = makeClient(job);
    try {
      const warmup = [
        await oneStream(client, job, job.warmup_texts, Number(job.warmup_bytes)),
      ];
      const [span, streams] = await measured(job, () =>
        sequential(job.streams, () =>
          oneStream(client, job, job.texts, Number(job.expected_bytes)),
        ),
      );
      return result(job, span, streams, warmup);
    } finally {
      client.destroy();
    }
  },
};

function write(line) {
  return new Promise((resolve) => process.stdout.write(`${line}\n`, resolve));
}

async function main() {
  await write(
    JSON.stringify({
      event: "ready",
      client: "js",
      startup_cpu_s: cpuSeconds(),
      ready_at: Date.now() / 1000,
      node: process.version,
      versions: {
        "@aws-sdk/client-polly": packageVersion("@aws-sdk/client-polly"),
        "@smithy/node-http-handler": packageVersion("@smithy/node-http-handler"),
        node: process.version,
      },
    }),
  );
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const job = JSON.parse(line);
    let out;
    try {
      out = await scenarios[job.kind](job);
    } catch (err) {
      out = { id: job.id, kind: job.kind, ok: false, error: describe(err), traceback: err?.stack };
    }
    await write(JSON.stringify(out));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`worker failure: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
