import type { Readiness, ReadinessCheck } from '../observability/http.js';

/**
 * The container's readiness from its workers' (index = worker; undefined: not running, an Error: did not
 * answer). Ready only when every worker is running and ready; each check names the workers it failed on.
 */
export function mergeReadiness(perWorker: (Readiness | Error | undefined)[]): Readiness {
  const running = perWorker.filter((r) => r !== undefined).length;
  const checks: Record<string, ReadinessCheck> = {
    workers: {
      ok: running === perWorker.length,
      ...(running === perWorker.length ? {} : { message: `${running} of ${perWorker.length} workers running` }),
    },
  };
  const failures = new Map<string, string[]>();
  const seen = new Set<string>();
  perWorker.forEach((r, index) => {
    if (r === undefined) return;
    const workerChecks: Record<string, ReadinessCheck> =
      r instanceof Error ? { answering: { ok: false, message: r.message } } : r.checks;
    for (const [name, check] of Object.entries(workerChecks)) {
      seen.add(name);
      if (check.ok) continue;
      failures.set(name, [...(failures.get(name) ?? []), `worker ${index}: ${check.message ?? 'failed'}`]);
    }
  });
  for (const name of seen) {
    const failed = failures.get(name);
    checks[name] = failed ? { ok: false, message: failed.join('; ') } : { ok: true };
  }
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}
