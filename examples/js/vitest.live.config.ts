import { defineConfig } from 'vitest/config';

// Tests against a running govlab API: GOVLAB_LIVE_URL and GOVLAB_LIVE_TOKENS (JSON of
// clinician, business and admin bearer tokens); tests/test_examples.py provides both.
export default defineConfig({ test: { include: ['live/*.test.ts'], testTimeout: 180_000 } });
