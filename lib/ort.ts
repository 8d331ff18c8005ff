// onnxruntime-node, loaded so that a float16 tensor holds its raw halves in a Uint16Array on every
// Node line. Import onnxruntime from here, never directly.
//
// Where the runtime has Float16Array (Node 24+), onnxruntime-common 1.30 turns a float16 tensor's
// data into a Float16Array, but the native binding reads typed arrays through Node-API, which has no
// float16 type: it sees 0 bytes and every float16 run fails ("not enough space: expected 12, got 0").
// onnxruntime-common chooses its float16 array type once, at the first Tensor it builds; building
// that first Tensor while Float16Array is hidden makes the choice Uint16Array (what it does on Node
// 20 and 22), and the global is put back at once for everything else in this thread.
import * as ort from 'onnxruntime-node';

const float16Array = Object.getOwnPropertyDescriptor(globalThis, 'Float16Array');
if (float16Array) {
  Reflect.deleteProperty(globalThis, 'Float16Array');
  try {
    new ort.Tensor('float32', new Float32Array(0), [0]);
  } finally {
    Object.defineProperty(globalThis, 'Float16Array', float16Array);
  }
}

export { ort };
