// Run StartSpeechSynthesisStream with AWS's official JS v3 client (@aws-sdk/client-polly).
//
// Same contract as ../python/synthesize.py: the test suite
// (tests/emulator/test_official_clients.py) pipes a JSON job in on stdin
//
//   {"endpoint_url", "region", "voice_id", "output_format", "sample_rate"?,
//    "texts": ["...", {"text": "...", "flush": true}], "repeat": 1, "delay_ms": 0}
//
// and reads one JSON line back: {"client", "calls": [{"audio_b64", "audio_events",
// "request_characters", "error", "ttfa_ms", "total_ms", ...}]}; the text events go
// out delay_ms apart, then CloseStreamEvent. The calls run one
// after the other on ONE client. Credentials come from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; the CA to trust from the
// NODE_EXTRA_CA_CERTS environment variable (read by Node at start-up). A service
// error is a result (exit 0); only a harness failure exits non-zero.
//
// Transport: Polly's default handler is HTTP/1.1, which cannot carry this
// bidirectional stream, so NodeHttp2Handler is passed explicitly.

import { PollyClient, StartSpeechSynthesisStreamCommand } from "@aws-sdk/client-polly";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

const BASE_ERROR_KEYS = new Set(["name", "message", "stack", "Message"]);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function describeError(err) {
  const fields = {};
  for (const [key, value] of Object.entries(err ?? {})) {
    if (!key.startsWith("$") && !BASE_ERROR_KEYS.has(key)) fields[key] = value;
  }
  return {
    type: err?.name ?? String(err),
    message: err?.message ?? String(err),
    fields,
    http_status: err?.$metadata?.httpStatusCode ?? null,
    fault: err?.$fault ?? null,
  };
}

function textEvents(texts) {
  return texts.map((item) => {
    if (typeof item === "string") return { Text: item };
    const event = { Text: item.text };
    if (item.flush) event.FlushStreamConfiguration = { Force: true };
    return event;
  });
}

async function synthesizeOnce(client, job) {
  const started = performance.now();
  const audio = [];
  let audioEvents = 0;
  let requestCharacters = null;
  let error = null;
  let ttfaMs = null;
  let sent = 0;
  const events = textEvents(job.texts);

  const delayMs = Number(job.delay_ms ?? 0);

  async function* actionStream() {
    for (const [i, event] of events.entries()) {
      if (i > 0 && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      sent += 1; // pulled by the client
      yield { TextEvent: event };
    }
    yield { CloseStreamEvent: {} };
  }

  const input = {
    Engine: "generative",
    VoiceId: job.voice_id,
    OutputFormat: job.output_format ?? "mp3",
    ActionStream: actionStream(),
  };
  if (job.sample_rate != null) input.SampleRate = String(job.sample_rate);

  try {
    const response = await client.send(new StartSpeechSynthesisStreamCommand(input));
    for await (const event of response.EventStream) {
      if (event.AudioEvent) {
        if (ttfaMs === null) ttfaMs = performance.now() - started;
        audio.push(Buffer.from(event.AudioEvent.AudioChunk ?? new Uint8Array()));
        audioEvents += 1;
      } else if (event.StreamClosedEvent) {
        requestCharacters = event.StreamClosedEvent.RequestCharacters ?? null;
      }
    }
  } catch (err) {
    error = describeError(err);
  }
  return {
    audio_b64: Buffer.concat(audio).toString("base64"),
    audio_events: audioEvents,
    request_characters: requestCharacters,
    error,
    text_events_sent: sent,
    ttfa_ms: ttfaMs,
    total_ms: performance.now() - started,
  };
}

async function main() {
  const job = await readStdin();
  const env = process.env;
  const credentials = {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  };
  if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
  const config = {
    region: job.region,
    endpoint: job.endpoint_url,
    credentials,
    requestHandler: new NodeHttp2Handler({ requestTimeout: 30000, sessionTimeout: 30000 }),
  };
  if (job.max_attempts != null) config.maxAttempts = Number(job.max_attempts);
  const client = new PollyClient(config);
  const calls = [];
  try {
    for (let i = 0; i < (job.repeat ?? 1); i += 1) {
      calls.push(await synthesizeOnce(client, job));
    }
  } finally {
    client.destroy();
  }
  process.stdout.write(`${JSON.stringify({ client: "@aws-sdk/client-polly", calls })}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`harness failure: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
