// Child of telemetry-lazy.test.ts, in a process of its own (a fresh module cache): one provider
// call through Keyport with nothing registered, then whether @opentelemetry/api was loaded; then
// a tracer provider registered by the application (its own require of the API, after keyport
// started) and a second call, which must be recorded as a span.
import { createRequire } from 'node:module';
import { Keyport } from '../../src/index.ts';
import { AES_ONLY_CAPABILITIES } from './capabilities.ts';

const require = createRequire(import.meta.url);
const apiLoaded = () => Object.keys(require.cache).some((p) => p.includes('@opentelemetry/api/'));
const provider = {
  scheme: 'local',
  name: 'local',
  capabilities: AES_ONLY_CAPABILITIES,
  parseUri: (uri) => ({ uri }),
  encrypt: async () => ({ ciphertext: new Uint8Array(8), keyVersion: '1' }),
  decrypt: async () => ({ plaintext: new Uint8Array(8), keyVersion: '1' }),
  mapError: () => undefined,
  close: async () => {},
};
const kp = new Keyport({ providers: [provider] });
await kp.encrypt('local://probe#k', new Uint8Array(8), { context: { a: 'b' } });
const loadedUnregistered = apiLoaded();

const { trace } = require('@opentelemetry/api');
const { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } = require('@opentelemetry/sdk-trace');
const exporter = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(tracerProvider);
await kp.encrypt('local://probe#k', new Uint8Array(8), { context: { a: 'b' } });
await tracerProvider.forceFlush();
process.stdout.write(
  JSON.stringify({ loadedUnregistered, spans: exporter.getFinishedSpans().map((s) => s.name) }),
);
