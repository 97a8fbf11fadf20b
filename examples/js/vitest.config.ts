import { defineConfig } from 'vitest/config';

// `npm test`: the tests that need no govlab server. live/ needs one: `npm run test:live`
// (tests/test_examples.py starts `govlab serve` and runs it).
export default defineConfig({ test: { include: ['*.test.ts'] } });
