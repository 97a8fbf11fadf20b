/**
 * Running DeltaApiProvider inside the real `@bilgrami/smart-search` (3.1).
 *
 * - `loadSmartSearch()`: the library where it is installed, null where it is not (the
 *   example then uses the provider directly and says so), and a clear error where it is
 *   installed but cannot load (a dependency missing) instead of a silent switch. The
 *   package is CommonJS without an `exports` map: from an ES module its default import is
 *   the whole `module.exports` object (`new SmartSearch()` then fails with "is not a
 *   constructor"), so the named export is used, as in `import { SmartSearch } from ...`.
 * - `smartSearchConfig()`: SmartSearch's config for a provider, with no cache, or with a
 *   shared cache wrapped in a PrincipalScopedCache.
 * - `smartSearchPage()`: one SmartSearch call, then what smart-search's answer cannot say:
 *   the page summary (total, totalExact, versions; smart-search's `resultCount` is the
 *   page length) and, when the call failed, the provider's error with its HTTP status
 *   (smart-search answers `results: []` and a string).
 */

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type {
  CacheProvider,
  SearchOptions,
  SearchPerformance,
  SearchResult,
  SearchStrategy,
  SmartSearchConfig,
} from 'smart-search-types';

import type { DeltaApiProvider, PageSummary, SearchPage } from './delta-api-provider.ts';
import { PrincipalScopedCache } from './principal-cache.ts';

export const SMART_SEARCH_PACKAGE = '@bilgrami/smart-search';
const HERE = dirname(fileURLToPath(import.meta.url));

/** What `SmartSearch.search` answers (smart-search 3.1). */
export interface SmartSearchAnswer {
  results: SearchResult[];
  performance: SearchPerformance;
  strategy: SearchStrategy;
}

/** The part of smart-search's SmartSearch class this example uses. */
export interface SmartSearchInstance {
  search(query: string, options?: SearchOptions): Promise<SmartSearchAnswer>;
}

export type SmartSearchConstructor = new (config: SmartSearchConfig) => SmartSearchInstance;

export interface SmartSearchLibrary {
  SmartSearch: SmartSearchConstructor;
  version: string;
  /** The package directory it was loaded from. */
  location: string;
}

/** smart-search is installed but cannot be loaded, or is not what this example expects. */
export class SmartSearchLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmartSearchLoadError';
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/**
 * smart-search as Node resolves it from `from` (default: this directory), or null when it
 * is not installed there. Throws SmartSearchLoadError when it is installed but broken.
 */
export async function loadSmartSearch(from: string = HERE): Promise<SmartSearchLibrary | null> {
  const require = createRequire(join(from, 'noop.js')); // resolution starts at `from`
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${SMART_SEARCH_PACKAGE}/package.json`);
  } catch (error) {
    if (errorCode(error) === 'MODULE_NOT_FOUND') return null;
    throw error;
  }
  const location = dirname(manifestPath);
  const manifest = require(manifestPath) as { version?: string };
  let module: { SmartSearch?: unknown };
  try {
    module = (await import(pathToFileURL(require.resolve(SMART_SEARCH_PACKAGE)).href)) as {
      SmartSearch?: unknown;
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const missing = /Cannot find (?:module|package) '([^']+)'/.exec(message)?.[1];
    throw new SmartSearchLoadError(
      missing
        ? `${SMART_SEARCH_PACKAGE} is installed at ${location} but cannot load: its ` +
          `dependency '${missing}' is missing (run \`npm ci\` in examples/js)`
        : `${SMART_SEARCH_PACKAGE} is installed at ${location} but cannot load: ${message}`,
    );
  }
  if (typeof module.SmartSearch !== 'function') {
    throw new SmartSearchLoadError(
      `${SMART_SEARCH_PACKAGE} at ${location} has no SmartSearch export (version ` +
        `${manifest.version}; this example is written against 3.1)`,
    );
  }
  return {
    SmartSearch: module.SmartSearch as SmartSearchConstructor,
    version: manifest.version ?? 'unknown',
    location,
  };
}

export interface SmartSearchCacheOptions {
  /** A CacheProvider shared by several principals' SmartSearch instances; each gets it
   * wrapped in its own PrincipalScopedCache. Unset: no client-side cache. */
  sharedCache?: CacheProvider;
  /** See PrincipalScopedCacheOptions.revalidateMs (default 0: check on every lookup). */
  revalidateMs?: number;
}

/** What `new SmartSearch(...)` is given for one provider (one principal). */
export function smartSearchConfig(
  provider: DeltaApiProvider,
  options: SmartSearchCacheOptions = {},
): SmartSearchConfig {
  if (!options.sharedCache) {
    return { database: provider, fallback: 'database', cacheConfig: { enabled: false } };
  }
  return {
    database: provider,
    cache: new PrincipalScopedCache(options.sharedCache, provider, {
      revalidateMs: options.revalidateMs,
    }),
    fallback: 'database',
    cacheConfig: { enabled: true },
  };
}

/** One SmartSearch call with its page summary. */
export interface SmartSearchPage extends SearchPage {
  /** Where the rows came from: the govlab server, or the principal-scoped client cache. */
  source: 'server' | 'client-cache';
  /** Errors of attempts that smart-search's fallback recovered from (they are also in
   * `performance.errors`, which smart-search sets whenever its primary attempt failed). */
  recovered: string[];
  performance: SearchPerformance;
  strategy: SearchStrategy;
}

/** The summary a page's results carry (all of them carry the same one). */
function summaryOf(results: SearchResult[]): PageSummary | null {
  const meta = results[0]?.metadata;
  if (!meta || typeof meta.total !== 'number') return null;
  const { role, total, totalExact, page, pageSize, maskedFields } = meta;
  const { tableVersion, policyVersion, cache } = meta;
  return {
    role,
    total,
    totalExact,
    page,
    pageSize,
    maskedFields,
    tableVersion,
    policyVersion,
    cache,
  };
}

/**
 * `smart.search(query, options)` for a SmartSearch built on `provider`, answered as a page:
 * throws the provider's error (a DeltaApiError with the HTTP status) when the call failed,
 * and returns the rows with the page summary when it answered, also when smart-search's
 * fallback attempt recovered from a transient failure (`recovered`).
 */
export async function smartSearchPage(
  smart: SmartSearchInstance,
  provider: DeltaApiProvider,
  query: string,
  options: SearchOptions = {},
): Promise<SmartSearchPage> {
  const call: SearchOptions = { ...options }; // a fresh object: this call's record is filed under it
  const answer = await smart.search(query, call);
  const outcome = provider.outcome(call);
  const { performance, strategy } = answer;
  if (outcome?.error) throw outcome.error; // the server's word wins over anything cached
  if (outcome?.page) {
    const recovered = outcome.recovered.length ? outcome.recovered : (performance.errors ?? []);
    return {
      results: answer.results,
      page: outcome.page,
      source: 'server',
      recovered,
      performance,
      strategy,
    };
  }
  const cached = summaryOf(answer.results);
  if (cached) {
    return {
      results: answer.results,
      page: cached,
      source: 'client-cache',
      recovered: [],
      performance,
      strategy,
    };
  }
  const errors = performance.errors?.join('; ') || 'no answer and no page';
  throw new Error(`SmartSearch: ${errors}`);
}
