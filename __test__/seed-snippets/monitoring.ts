// Seed 000, Monitoring and Observability: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxedAgentExecutor, type Sandbox, type SandboxedAgentConfig, type SandboxedExecutionResult } from '../../index.js'
import { context, SpanStatusCode, trace } from './ambient.js'

// Metrics Collection's class reads a `sandbox` it does not define (in sendToPrometheus/sendToDatadog).
declare const sandbox: Sandbox

// seed 000 lines 2870–2933: Monitoring and Observability › Metrics Collection
// At module level: Migration Guide › Step 5 uses this class.
class SandboxMetrics {
  private metrics: Map<string, any> = new Map();

  async collect(sandbox: Sandbox): Promise<void> {
    const stats = await sandbox.getStats();

    this.metrics.set(sandbox.id, {
      timestamp: Date.now(),
      memoryUsageMB: stats.memoryUsageMB,
      cpuPercent: stats.cpuPercent,
      diskUsageMB: stats.diskUsageMB,
      networkRxMB: stats.networkRxMB,
      networkTxMB: stats.networkTxMB
    });

    // Send to monitoring system
    await this.sendToPrometheus(stats);
    await this.sendToDatadog(stats);
  }

  private async sendToPrometheus(stats: any): Promise<void> {
    // Prometheus metrics export
    const metrics = `
# HELP sandbox_memory_usage_mb Memory usage in MB
# TYPE sandbox_memory_usage_mb gauge
sandbox_memory_usage_mb{id="${sandbox.id}"} ${stats.memoryUsageMB}

# HELP sandbox_cpu_percent CPU usage percent
# TYPE sandbox_cpu_percent gauge
sandbox_cpu_percent{id="${sandbox.id}"} ${stats.cpuPercent}
    `.trim();

    // Send to Prometheus pushgateway
    await fetch('http://pushgateway:9091/metrics/job/sandbox', {
      method: 'POST',
      body: metrics
    });
  }

  private async sendToDatadog(stats: any): Promise<void> {
    // Datadog metrics
    await fetch('https://api.datadoghq.com/api/v1/series', {
      method: 'POST',
      headers: {
        'DD-API-KEY': process.env.DATADOG_API_KEY!,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        series: [
          {
            metric: 'sandbox.memory.usage',
            points: [[Date.now() / 1000, stats.memoryUsageMB]],
            tags: [`sandbox_id:${sandbox.id}`]
          },
          {
            metric: 'sandbox.cpu.percent',
            points: [[Date.now() / 1000, stats.cpuPercent]],
            tags: [`sandbox_id:${sandbox.id}`]
          }
        ]
      })
    });
  }
}
// Migration Guide › Step 5 uses this class.
export { SandboxMetrics }

// seed 000 lines 3012–3044: Monitoring and Observability › Distributed Tracing
async function snippet_monitoring_3012() {
// import { trace, context, SpanStatusCode } from '@opentelemetry/api';  <- see the imports at the top of this file

class TracedSandboxExecutor extends SandboxedAgentExecutor {
  async execute(task: string, config: SandboxedAgentConfig): Promise<SandboxedExecutionResult> {
    const tracer = trace.getTracer('sandbox-executor');

    return tracer.startActiveSpan('sandbox.execute', async (span) => {
      span.setAttribute('task', task);
      span.setAttribute('agent', config.agentName);
      // ANNOTATION: `!`: SandboxedAgentConfig.sandboxConfig is optional, so strict mode needs it
      //   asserted present
      span.setAttribute('provider', config.sandboxConfig!.provider);

      try {
        const result = await super.execute(task, config);

        span.setAttribute('exitCode', result.exitCode);
        span.setAttribute('durationMs', result.durationMs);
        span.setAttribute('filesCreated', result.stats.filesCreated);
        span.setStatus({ code: SpanStatusCode.OK });

        return result;
      } catch (error: any) {
        span.recordException(error);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error.message
        });
        throw error;
      } finally {
        span.end();
      }
    });
  }
}
}
