// Tests compile with @swc/jest (type checking is `npm run typecheck`). The custom environment shares
// the outer realm's typed-array constructors, which onnxruntime-node requires.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/test/helpers/node-environment.js',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
    // jose (JWT/JWKS) ships only ES modules; Node runs them by require(esm), jest's runtime before
    // Node 24.9 does not, so they are compiled to CommonJS for the tests.
    '/node_modules/jose/.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60_000,
  // Integration tests start real servers and processes; two at a time fits a 2-core machine.
  maxWorkers: 2,
  verbose: false,
};
