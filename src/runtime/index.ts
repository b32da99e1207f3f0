// The runtime layer's public surface: logging, metrics, probes, leader election, shutdown, deadlines.
export * from './deadline.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './health.ts';
export * from './leader-election.ts';
export * from './shutdown.ts';
