import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/**
 * One exposition for the container: counters, histograms and most gauges (sessions, memory, budgets) are
 * summed over the workers, as if one process had served everything. Event-loop lag is the worst worker's,
 * not prom-client's average: one saturated worker is what the lag alert is for, even when the others idle.
 */
export function aggregateWorkerMetrics(perWorker: WorkerMetrics[]): Registry {
  const adjusted = perWorker.map((metrics) =>
    metrics.map((m) => (isAveragedLag(m.name) ? { ...m, aggregator: 'max' as const } : m)),
  );
  return AggregatorRegistry.aggregate(adjusted);
}

function isAveragedLag(name: string): boolean {
  return name.startsWith('nodejs_eventloop_lag_') && !name.endsWith('_min_seconds');
}
