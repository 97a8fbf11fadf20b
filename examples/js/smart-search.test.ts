/**
 * DeltaApiProvider inside the real `@bilgrami/smart-search` 3.1 (never a mock of it),
 * against a fake govlab HTTP server on 127.0.0.1 (testing/fake-govlab.ts), one test per
 * finding of issue 14: types, errors, transient failures, per-call totals, a cache safe to
 * share between principals, fromConfig, the CommonJS import and a broken install.
 *
 * Skipped where the package is not installed, unless GOVLAB_REQUIRE_SMART_SEARCH=1 (CI),
 * which makes its absence a failure. The live run against govlab itself is in
 * tests/test_examples.py.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { DeltaApiError, DeltaApiProvider, fromConfig } from './delta-api-provider.ts';
import { MemoryCache, PrincipalScopedCache } from './principal-cache.ts';
import { main } from './search-delta-redis.ts';
import {
  SMART_SEARCH_PACKAGE,
  type SmartSearchConstructor,
  SmartSearchLoadError,
  type SmartSearchInstance,
  loadSmartSearch,
  smartSearchConfig,
  smartSearchPage,
} from './smart-search-bridge.ts';
import { type Claims, FakeGovlab, forgeToken, mintToken } from './testing/fake-govlab.ts';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const REQUIRED = process.env.GOVLAB_REQUIRE_SMART_SEARCH === '1';
const library = await loadSmartSearch();

const CLINICIAN: Claims = { sub: 'dr-who', role: 'clinician', attrs: { id: 'C007' } };
const BUSINESS: Claims = { sub: 'biz', role: 'business_user', attrs: {} };

/** An empty directory: smart-search does not resolve from there. */
const nowhere = () => mkdtempSync(join(tmpdir(), 'no-smart-search-'));

describe('the real library', () => {
  it('is installed where GOVLAB_REQUIRE_SMART_SEARCH=1 (else these tests skip)', (ctx) => {
    if (!library && !REQUIRED) ctx.skip();
    expect(library, 'GOVLAB_REQUIRE_SMART_SEARCH=1 but @bilgrami/smart-search is absent').not.toBe(
      null,
    );
    expect(library?.version).toBe('3.1.0');
  });
});

describe.skipIf(!library)('inside smart-search 3.1', () => {
  const SmartSearch = library?.SmartSearch as SmartSearchConstructor; // set wherever this runs
  const server = new FakeGovlab();
  let logged: string[] = [];

  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(() => {
    server.searches.length = 0;
    server.script.length = 0;
    logged = [];
    // smart-search logs every failed attempt; keep the output quiet, and look at it.
    for (const level of ['error', 'warn', 'log'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logged.push(args.map((a) => (typeof a === 'string' ? a : String(a))).join(' '));
      });
    }
  });
  afterEach(() => {
    vi.restoreAllMocks();
    server.tableVersion = 1;
    server.policyRevision = 1;
    server.health = { status: 'ok', redis: 'ok', dataRoot: 'ok' };
  });

  function provider(claims: Claims | string, extra: Partial<{ timeoutMs: number }> = {}) {
    const token = typeof claims === 'string' ? claims : mintToken(claims);
    return new DeltaApiProvider({ url: server.url, token, ...extra });
  }

  function smart(p: DeltaApiProvider, sharedCache?: MemoryCache): SmartSearchInstance {
    return new SmartSearch(smartSearchConfig(p, { sharedCache }));
  }

  /** main() with its console output captured (it prints through console.log/error). */
  async function runMain(args: string[], smartSearchFrom?: string) {
    const start = logged.length;
    const code = await main(args, { smartSearchFrom, env: {} });
    return { code, out: logged.slice(start).join('\n') };
  }

  describe('1. types: the provider is typed against the package', () => {
    it('declares exactly 3.1 types and fits its interfaces (tsc, type-tests/)', async () => {
      const tsc = join(HERE, 'node_modules', 'typescript', 'bin', 'tsc');
      const done = await run(process.execPath, [tsc, '-p', 'tsconfig.smart-search.json'], {
        cwd: HERE,
        timeout: 60_000,
      }).catch((error: { stdout?: string; code?: number }) => error);
      expect('stdout' in done ? done.stdout : '').toBe('');
      expect((done as { code?: number }).code ?? 0).toBe(0);
    }, 70_000);

    it("carries a 3.1 result type ('healthcare_data') through SmartSearch", async () => {
      const p = new DeltaApiProvider({
        url: server.url,
        token: mintToken(CLINICIAN),
        resultType: 'healthcare_data',
      });
      const answer = await smart(p).search('asthma', { limit: 2 });
      expect(answer.performance.errors).toBeUndefined();
      expect(answer.results.map((r) => r.type)).toEqual(['healthcare_data', 'healthcare_data']);
    });
  });

  describe('2. a client error reaches the caller with its status, sent once', () => {
    it.each([
      [401, 'invalid token'],
      [403, "role 'nobody' is not in the healthcare policy"],
      [422, "cannot sort on masked column 'name'"],
    ])('HTTP %i', async (status, detail) => {
      server.script.push({ status, detail });
      const p = provider(BUSINESS);
      const error = await smartSearchPage(smart(p), p, '', { limit: 3 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeltaApiError);
      expect(error).toMatchObject({
        status,
        detail,
        message: `delta-api: HTTP ${status}: ${detail}`,
      });
      expect(server.searches).toHaveLength(1); // smart-search's fallback did not send it again
      // smart-search logged its attempts, each on one line, with no stack trace
      expect(logged.join('\n')).toContain(`HTTP ${status}`);
      expect(logged.join('\n')).not.toMatch(/\n\s+at /);
    });

    it('is what plain smart.search() turns into [] and a string (read it with outcome())', async () => {
      server.script.push({ status: 401, detail: 'invalid token' });
      const p = provider(BUSINESS);
      const options = { limit: 3 };
      const answer = await smart(p).search('', options);
      expect(answer.results).toEqual([]); // smart-search's own answer to any failure
      expect(answer.performance.errors).toEqual(['delta-api: HTTP 401: invalid token']);
      expect(p.outcome(options)).toMatchObject({ attempts: 2, error: { status: 401 } });
      expect(server.searches).toHaveLength(1);
    });

    it('keeps a call within timeoutMs, fallback included, against a server that never answers', async () => {
      server.script.push({ hang: true });
      const p = provider(BUSINESS, { timeoutMs: 500 });
      await p.connect(); // /health answers; only /search hangs
      const started = performance.now();
      const error = await smartSearchPage(smart(p), p, '', {}).catch((e: unknown) => e);
      const elapsed = performance.now() - started;
      expect(error).toMatchObject({ status: 0, timedOut: true });
      expect(elapsed).toBeGreaterThanOrEqual(490);
      expect(elapsed).toBeLessThan(900); // not 2 x 500 ms: the fallback attempt sent nothing
      expect(server.searches).toHaveLength(1);
    });

    it("reports govlab's degraded /health as smart-search's status 'degraded'", async () => {
      server.health = { status: 'degraded', redis: 'unreachable', dataRoot: 'ok' };
      const s = new SmartSearch(smartSearchConfig(provider(BUSINESS))) as SmartSearchInstance & {
        getSearchStats(): Promise<{ databaseHealth: { status?: string; errors?: string[] } }>;
      };
      const { databaseHealth } = await s.getSearchStats(); // smart-search asks the provider
      expect(databaseHealth.status).toBe('degraded');
      expect(databaseHealth.errors?.join()).toMatch(/redis unreachable/);
      server.health = { status: 'ok', redis: 'ok', dataRoot: 'ok' };
      expect((await s.getSearchStats()).databaseHealth.status).toBe('healthy');
      await server.stop();
      try {
        const down = await provider(BUSINESS).checkHealth();
        expect(down).toMatchObject({ status: 'unhealthy', isConnected: false });
      } finally {
        await server.start();
      }
    });

    it('makes the example print the same failure with and without smart-search', async () => {
      const args = ['--url', server.url, '--token', forgeToken(BUSINESS)];
      const withLibrary = await runMain(args);
      const without = await runMain(args, nowhere());
      const failed = 'FAILED (status 401): delta-api: HTTP 401: invalid token';
      expect(withLibrary.code).toBe(1);
      expect(without.code).toBe(1);
      expect(withLibrary.out.split('\n').at(-1)).toBe(failed);
      expect(without.out.split('\n').at(-1)).toBe(failed);
      expect(server.searches).toHaveLength(2); // once per run
    });
  });

  describe('3. a transient failure that the fallback recovers from is not a failure', () => {
    it('returns the rows and says what was recovered', async () => {
      server.script.push({ status: 503, detail: 'worker restarting' });
      const p = provider(CLINICIAN);
      const answer = await smartSearchPage(smart(p), p, 'asthma', { limit: 2 });
      expect(answer.results.map((r) => r.id)).toEqual(['6', '12']);
      expect(answer.recovered).toEqual(['delta-api: HTTP 503: worker restarting']);
      expect(answer.performance.errors).toEqual(answer.recovered); // upstream's "primary failed"
      expect(server.searches).toHaveLength(2); // a 5xx is worth one more try
    });

    it('fails with the last status when the fallback fails too', async () => {
      server.script.push({ status: 503, detail: 'down' }, { status: 502, detail: 'bad gateway' });
      const p = provider(CLINICIAN);
      await expect(smartSearchPage(smart(p), p, '', {})).rejects.toMatchObject({ status: 502 });
      expect(server.searches).toHaveLength(2);
    });

    it('makes the example exit 0 with the results and a warning', async () => {
      server.script.push({ status: 503, detail: 'worker restarting' });
      const args = ['--url', server.url, '--token', mintToken(CLINICIAN), '-q', 'asthma'];
      const { code, out } = await runMain(args);
      expect(code).toBe(0);
      expect(out).toContain(
        "warning: SmartSearch's first attempt failed (delta-api: HTTP 503: worker restarting)",
      );
      expect(out).toContain('via SmartSearch 3.1.0');
      expect(out).toMatch(/as role clinician: total 5, page 1/);
      expect(out).not.toContain('FAILED');
    });
  });

  describe('4. totals: per call, typed, not lost at the SmartSearch level', () => {
    it('keeps each concurrent call its own page summary', async () => {
      server.delays.set('asthma', 150); // answered after the broad query below
      const p = provider(BUSINESS);
      const s = smart(p);
      const [slow, fast] = await Promise.all([
        smartSearchPage(s, p, 'asthma', { limit: 3 }),
        smartSearchPage(s, p, '', { limit: 3 }),
      ]);
      server.delays.clear();
      expect(slow.page.total).toBe(10);
      expect(fast.page.total).toBe(30);
      expect(slow.performance.resultCount).toBe(3); // smart-search counts the page only
      expect(slow.results.every((r) => r.metadata?.total === 10)).toBe(true);
      expect(slow.page).toEqual({
        role: 'business_user',
        total: 10,
        totalExact: true,
        page: 1,
        pageSize: 3,
        maskedFields: ['name', 'ssn'],
        tableVersion: 1,
        policyVersion: 'policy1',
        cache: 'miss',
      });
    });
  });

  describe('5. a cache shared by two principals (PrincipalScopedCache)', () => {
    const names = (page: { results: { title: string }[] }) => page.results.map((r) => r.title);

    it("without the wrapper, smart-search serves one principal the other one's page", async () => {
      // The hazard the wrapper exists for, shown with the real library.
      const shared = new MemoryCache();
      const clinician = provider(CLINICIAN);
      const business = provider(BUSINESS);
      const config = (p: DeltaApiProvider) => ({
        database: p,
        cache: shared,
        fallback: 'database' as const,
      });
      await new SmartSearch(config(clinician)).search('asthma', { limit: 2 });
      const leaked = await new SmartSearch(config(business)).search('asthma', { limit: 2 });
      expect(leaked.results.map((r) => r.title)).toEqual(['Patient 6', 'Patient 12']);
    });

    it("never lets two principals see each other's pages", async () => {
      const shared = new MemoryCache();
      const clinician = provider(CLINICIAN);
      const business = provider(BUSINESS);
      const [sc, sb] = [smart(clinician, shared), smart(business, shared)];

      const c1 = await smartSearchPage(sc, clinician, 'asthma', { limit: 2 });
      const b1 = await smartSearchPage(sb, business, 'asthma', { limit: 2 });
      expect([c1.source, b1.source]).toEqual(['server', 'server']);
      expect(names(c1)).toEqual(['Patient 6', 'Patient 12']);
      expect(names(b1)).toEqual(['*****', '*****']);

      const c2 = await smartSearchPage(sc, clinician, 'asthma', { limit: 2 });
      const b2 = await smartSearchPage(sb, business, 'asthma', { limit: 2 });
      expect([c2.source, b2.source]).toEqual(['client-cache', 'client-cache']);
      expect(names(c2)).toEqual(names(c1));
      expect(names(b2)).toEqual(['*****', '*****']);
      expect(b2.page).toMatchObject({ role: 'business_user', total: 10 });
      expect(c2.results[0].metadata?.clientCache).toBe('hit');

      // Every entry is filed under its principal's scope; two scopes, none unscoped.
      const scopes = new Set(shared.keys().map((key) => key.split(':')[1]));
      expect(shared.keys().every((key) => key.startsWith('govlab:'))).toBe(true);
      expect(scopes).toEqual(
        new Set([
          new PrincipalScopedCache(shared, clinician).scope,
          new PrincipalScopedCache(shared, business).scope,
        ]),
      );
    });

    it('does not serve a page from before a policy edit or a reseed', async () => {
      const shared = new MemoryCache();
      const business = provider(BUSINESS);
      const s = smart(business, shared);
      const first = await smartSearchPage(s, business, 'asthma', { limit: 2 });
      expect((await smartSearchPage(s, business, 'asthma', { limit: 2 })).source).toBe(
        'client-cache',
      );

      server.editPolicy(); // business_user now also has `condition` masked
      const edited = await smartSearchPage(s, business, 'asthma', { limit: 2 });
      expect(edited.source).toBe('server');
      expect(edited.page.policyVersion).toBe('policy2');
      expect(edited.page.maskedFields).toContain('condition');
      expect(edited.results.map((r) => r.subtitle)).toEqual(['*****', '*****']);
      expect(first.results.map((r) => r.subtitle)).toEqual(['asthma', 'asthma']);

      server.reseed();
      const reseeded = await smartSearchPage(s, business, 'asthma', { limit: 2 });
      expect(reseeded.source).toBe('server');
      expect(reseeded.page.tableVersion).toBe(2);
      expect(reseeded.results[0].createdAt).toBe('2024-02-01T00:00:00');
      expect((await smartSearchPage(s, business, 'asthma', { limit: 2 })).source).toBe(
        'client-cache',
      );
    });

    it("refuses a forged token that copies a cached principal's claims", async () => {
      const shared = new MemoryCache();
      const clinician = provider(CLINICIAN);
      await smartSearchPage(smart(clinician, shared), clinician, 'asthma', { limit: 2 });
      const forged = provider(forgeToken(CLINICIAN));
      // Same claims, so the same scope: only the server's check keeps the page from it.
      expect(new PrincipalScopedCache(shared, forged).scope).toBe(
        new PrincipalScopedCache(shared, clinician).scope,
      );
      await expect(
        smartSearchPage(smart(forged, shared), forged, 'asthma', { limit: 2 }),
      ).rejects.toMatchObject({ status: 401 });
    });

    it('stores nothing for an empty page or a token without claims', async () => {
      const shared = new MemoryCache();
      const business = provider(BUSINESS);
      await smartSearchPage(smart(business, shared), business, 'no-such-condition', {});
      expect(shared.keys()).toEqual([]);
      const opaque = new PrincipalScopedCache(shared, provider('not-a-jwt'));
      expect(opaque.scope).toBeNull();
      await opaque.set('k', [
        { id: '1', metadata: { role: 'x', tableVersion: 1, policyVersion: 'p' } },
      ]);
      expect(shared.keys()).toEqual([]);
      await expect(opaque.search('', {})).rejects.toThrow(/refused/);
    });
  });

  describe("6. smart-search's own factory does not build delta-api", () => {
    it('throws on the shipped config; this example reads it', async () => {
      const specifier: string = SMART_SEARCH_PACKAGE; // not a literal: tsc without the package
      const { SmartSearchFactory, ConfigLoader } = (await import(specifier)) as {
        SmartSearchFactory: {
          fromConfig(path: string): unknown;
          validateConfig(config: unknown): { valid: boolean; errors: string[] };
        };
        ConfigLoader: { getInstance(): { loadConfig(path: string): Record<string, any> } };
      };
      const path = join(HERE, 'smart-search.config.json');
      expect(() => SmartSearchFactory.fromConfig(path)).toThrow(
        'Unsupported database type: delta-api',
      );
      const loaded = ConfigLoader.getInstance().loadConfig(path);
      expect(SmartSearchFactory.validateConfig(loaded).valid).toBe(false);
      // smart-search's loader leaves ${VAR} as it is; the expansion is this example's own.
      expect(loaded.database.connection.url).toBe('${GOVLAB_API_URL:-http://127.0.0.1:8000}');
      const ours = fromConfig(path, { env: { GOVLAB_TOKEN: 't' } });
      expect(ours.url).toBe('http://127.0.0.1:8000');
    });
  });

  describe('7. loading: CommonJS named export, absent package, broken install', () => {
    it('works with the named import and not the default one, from an ES module', async () => {
      const script = [
        "import SmartSearchDefault, { SmartSearch } from '@bilgrami/smart-search';",
        "const config = { database: { name: 'x' }, fallback: 'database' };",
        'let viaDefault;',
        "try { new SmartSearchDefault(config); viaDefault = 'ok'; } catch (e) { viaDefault = e.message; }",
        'console.log(JSON.stringify({ named: typeof new SmartSearch(config).search, viaDefault }));',
      ].join('\n');
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: HERE,
        timeout: 30_000,
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
      expect(result.named).toBe('function');
      expect(result.viaDefault).toMatch(/is not a constructor/);
    });

    it('says where it is absent and still searches, or fails when it is required', async () => {
      const args = ['--url', server.url, '--token', mintToken(CLINICIAN), '-q', 'asthma'];
      const absent = nowhere();
      expect(await loadSmartSearch(absent)).toBeNull();
      const { code, out } = await runMain(args, absent);
      expect(code).toBe(0);
      expect(out).toContain(
        'via DeltaApiProvider directly: @bilgrami/smart-search is not installed',
      );
      expect(out).toMatch(/as role clinician: total 5, page 1/);

      const start = logged.length;
      const required = await main(args, {
        smartSearchFrom: absent,
        env: { GOVLAB_REQUIRE_SMART_SEARCH: '1' },
      });
      expect(required).toBe(2);
      expect(logged.slice(start).join('\n')).toMatch(/GOVLAB_REQUIRE_SMART_SEARCH=1 but/);
    });

    it('names a missing dependency instead of quietly running without the library', async () => {
      // The package alone, without its dependencies, as a half-finished install leaves it.
      const project = mkdtempSync(join(tmpdir(), 'broken-smart-search-'));
      const target = join(project, 'node_modules', '@bilgrami', 'smart-search');
      mkdirSync(join(target, 'dist'), { recursive: true });
      const source = join(HERE, 'node_modules', '@bilgrami', 'smart-search');
      cpSync(join(source, 'package.json'), join(target, 'package.json'));
      cpSync(join(source, 'dist', 'index.js'), join(target, 'dist', 'index.js'));

      const error = await loadSmartSearch(project).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SmartSearchLoadError);
      expect((error as Error).message).toMatch(
        /is installed at .* but cannot load: its dependency '@supabase\/supabase-js' is missing/,
      );
      const { code, out } = await runMain(
        ['--url', server.url, '--token', mintToken(CLINICIAN)],
        project,
      );
      expect(code).toBe(2);
      expect(out).toMatch(/FAILED: @bilgrami\/smart-search is installed at .* cannot load/);
      expect(out).not.toContain('via DeltaApiProvider directly');
      expect(server.searches).toHaveLength(0);
    });
  });
});
