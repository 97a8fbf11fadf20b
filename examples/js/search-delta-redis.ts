/**
 * govlab's HTTP API as a smart-search `DatabaseProvider` ("delta-api"), and a live example.
 *
 *   cd examples/js && npm ci          # also installs @bilgrami/smart-search from vendor/
 *   TOKEN=$(../../.venv/bin/govlab token --role clinician --attr id=C007)
 *   npx tsx search-delta-redis.ts --url http://127.0.0.1:8000 --token "$TOKEN" --query asthma
 *   GOVLAB_API_URL=... GOVLAB_TOKEN=... npx tsx search-delta-redis.ts --config smart-search.config.json
 *   npx tsx search-delta-redis.ts ... --exact-total   # count every match (slower on broad queries)
 *
 * The search runs through smart-search's `SmartSearch` where `@bilgrami/smart-search` is
 * installed, and through the provider directly where it is not; the output says which
 * ("via SmartSearch 3.1.0" / "via DeltaApiProvider directly") and is otherwise the same,
 * failures included. The pieces, importable from here:
 *
 * - delta-api-provider.ts: DeltaApiProvider, DeltaApiError, the page mapping, fromConfig;
 * - smart-search-bridge.ts: loadSmartSearch, smartSearchConfig, smartSearchPage;
 * - principal-cache.ts: PrincipalScopedCache (a CacheProvider safe to share between
 *   principals) and MemoryCache;
 * - smart-search-types.ts: smart-search 3.1's types, for machines without the package.
 *
 * Exit status: 0 with results; 1 when the search failed (the API's HTTP status is printed,
 * `FAILED (status 401): ...`); 2 for bad arguments or config, a smart-search install that
 * cannot load, or GOVLAB_REQUIRE_SMART_SEARCH=1 without smart-search.
 */

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import type { HealthStatus, SearchOptions } from 'smart-search-types';

import {
  type Dataset,
  DeltaApiError,
  type DeltaApiProvider,
  type Format,
  type FromConfigOverrides,
  describeTotal,
  fromConfig,
  providerFromConfigObject,
} from './delta-api-provider.ts';
import {
  SMART_SEARCH_PACKAGE,
  type SmartSearchLibrary,
  type SmartSearchPage,
  loadSmartSearch,
  smartSearchConfig,
  smartSearchPage,
} from './smart-search-bridge.ts';

export type {
  CacheProvider,
  DatabaseProvider,
  HealthStatus,
  SearchFilters,
  SearchOptions,
  SearchResult,
  SmartSearchConfig,
} from 'smart-search-types';
export * from './delta-api-provider.ts';
export * from './principal-cache.ts';
export * from './smart-search-bridge.ts';

const USAGE = `usage: npx tsx search-delta-redis.ts [--config smart-search.config.json]
       [--url URL] [--token TOKEN] [--query TEXT] [--limit N] [--offset N]
       [--dataset healthcare|ecommerce|financial] [--format delta|parquet|iceberg]
       [--exact-total] [--json]
URL and TOKEN default to GOVLAB_API_URL and GOVLAB_TOKEN (mint one with \`govlab token\`).
A total past the server's count limit (GOVLAB_COUNT_LIMIT, 10,000) is a lower bound,
printed as N+; --exact-total (or options.exactTotal in the config) counts every match.
Runs through ${SMART_SEARCH_PACKAGE}'s SmartSearch where it is installed (\`npm ci\`
installs the vendored build); GOVLAB_REQUIRE_SMART_SEARCH=1 makes its absence an error.
Exit status: 0 ok, 1 the search failed, 2 bad arguments, config or installation.`;

const NOT_INSTALLED =
  `${SMART_SEARCH_PACKAGE} is not installed here (it is not on the npm registry: ` +
  '`npm ci` in examples/js installs the build vendored in govlab, or build it from ' +
  'github.com/samas-it-services/smart-search)';

export interface MainOptions {
  /** Where smart-search is resolved from (default: this directory). */
  smartSearchFrom?: string;
  env?: NodeJS.ProcessEnv;
}

export async function main(
  argv: string[] = process.argv.slice(2),
  options: MainOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        query: { type: 'string', short: 'q', default: '' },
        limit: { type: 'string', default: '5' },
        offset: { type: 'string', default: '0' },
        dataset: { type: 'string' },
        format: { type: 'string' },
        'exact-total': { type: 'boolean' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(USAGE);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const overrides: FromConfigOverrides = {
    url: values.url,
    token: values.token,
    dataset: values.dataset as Dataset | undefined,
    format: values.format as Format | undefined,
    // Only when given, so the config file's options.exactTotal applies otherwise.
    exactTotal: values['exact-total'] ? true : undefined,
    env,
  };
  const configPath = values.config ?? 'smart-search.config.json';
  let provider: DeltaApiProvider;
  try {
    provider =
      values.config || existsSync(configPath)
        ? fromConfig(resolve(configPath), overrides)
        : providerFromConfigObject({ database: { type: 'delta-api', connection: {} } }, overrides);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(USAGE);
    return 2;
  }

  let library: SmartSearchLibrary | null;
  try {
    library = await loadSmartSearch(options.smartSearchFrom);
  } catch (error) {
    // Installed but broken: say so, rather than quietly running without it.
    console.error(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  if (!library && env.GOVLAB_REQUIRE_SMART_SEARCH === '1') {
    console.error(`FAILED: GOVLAB_REQUIRE_SMART_SEARCH=1 but ${NOT_INSTALLED}`);
    return 2;
  }

  const query = values.query ?? '';
  const window: SearchOptions = { limit: Number(values.limit), offset: Number(values.offset) };
  try {
    const health = await provider.checkHealth();
    if (!health.isConnected) throw new DeltaApiError(0, health.message ?? 'no answer');
    const answer: Pick<SmartSearchPage, 'results' | 'page' | 'recovered'> = library
      ? await smartSearchPage(
          new library.SmartSearch(smartSearchConfig(provider)),
          provider,
          query,
          window,
        )
      : { ...(await provider.searchPage(query, window)), recovered: [] };
    for (const error of answer.recovered) {
      console.error(
        `warning: SmartSearch's first attempt failed (${error}); its fallback answered`,
      );
    }
    if (values.json) {
      const via = library ? 'SmartSearch' : 'provider';
      const { results, page, recovered } = answer;
      const smartSearchVersion = library?.version ?? null;
      console.log(JSON.stringify({ health, via, smartSearchVersion, page, recovered, results }));
      return 0;
    }
    printAnswer(provider, health, library, query, answer);
    return 0;
  } catch (error) {
    const status = error instanceof DeltaApiError ? ` (status ${error.status})` : '';
    console.error(`FAILED${status}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await provider.disconnect();
  }
}

function printAnswer(
  provider: DeltaApiProvider,
  health: HealthStatus,
  library: SmartSearchLibrary | null,
  query: string,
  { results, page }: Pick<SmartSearchPage, 'results' | 'page'>,
): void {
  const problems = health.errors?.length ? ` (${health.errors.join('; ')})` : '';
  console.log(`${provider.url}: ${health.status}, answered in ${health.latency} ms${problems}`);
  console.log(
    library
      ? `via SmartSearch ${library.version} (${SMART_SEARCH_PACKAGE}; no client cache)`
      : `via DeltaApiProvider directly: ${NOT_INSTALLED}`,
  );
  console.log(
    `${provider.dataset}/${provider.format} q=${JSON.stringify(query)} as role ${page.role}: ` +
      `total ${describeTotal(page)}, page ${page.page} (pageSize ${page.pageSize}), ` +
      `cache ${page.cache}, table v${page.tableVersion}, policy ${page.policyVersion}`,
  );
  console.log(`maskedFields: ${page.maskedFields.join(', ') || '(none)'}`);
  for (const result of results) {
    const parts = [result.subtitle, result.category, result.createdAt].filter(Boolean);
    console.log(`  ${result.id.padStart(8)}  ${result.title}  [${parts.join(' | ')}]`);
    if (result.description !== undefined) console.log(`            ${result.description}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
