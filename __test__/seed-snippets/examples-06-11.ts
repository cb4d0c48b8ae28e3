// Seed 000, Code Examples 6–11: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxManager, SandboxedAgentExecutor } from '../../index.js'

// seed 000 lines 1726–1782: Code Examples › Example 6: Database Migration in Sandbox
async function snippet_examples_06_11_1726() {
async function databaseMigration() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'postgres:15-alpine',
    limits: { memoryMB: 512, cpuCores: 1 },
    env: {
      POSTGRES_PASSWORD: 'testpassword',
      POSTGRES_DB: 'testdb'
    }
  });

  await sandbox.start();

  // Wait for PostgreSQL to start
  await new Promise(resolve => setTimeout(resolve, 3000));

  // Write migration script
  await sandbox.writeFile('/workspace/migration.sql', `
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(255) UNIQUE NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_users_email ON users(email);

INSERT INTO users (name, email) VALUES
    ('Alice', 'alice@example.com'),
    ('Bob', 'bob@example.com');
  `);

  // Run migration
  const result = await sandbox.execute('psql', [
    '-U', 'postgres',
    '-d', 'testdb',
    '-f', '/workspace/migration.sql'
  ]);

  if (result.exitCode === 0) {
    console.log('‚úÖ Migration successful');

    // Verify
    const verifyResult = await sandbox.execute('psql', [
      '-U', 'postgres',
      '-d', 'testdb',
      '-c', 'SELECT * FROM users;'
    ]);

    console.log('Users table:\n', verifyResult.stdout);
  } else {
    console.error('‚ùå Migration failed:', result.stderr);
  }

  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1788–1843: Code Examples › Example 7: Docker-in-Docker Build
async function snippet_examples_06_11_1788() {
async function dockerInDocker() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'docker:24-dind',
    limits: { memoryMB: 2048, cpuCores: 2 },
    // Mount Docker socket for DinD
    docker: {
      socketPath: '/var/run/docker.sock'
    }
  });

  await sandbox.start();

  // Write Dockerfile
  await sandbox.writeFile('/workspace/Dockerfile', `
FROM node:20-alpine
WORKDIR /app
COPY package.json .
RUN npm install
COPY . .
CMD ["node", "server.js"]
  `);

  // Write application files
  await sandbox.writeFile('/workspace/package.json', JSON.stringify({
    name: 'sandbox-app',
    version: '1.0.0',
    dependencies: { express: '^4.18.0' }
  }, null, 2));

  await sandbox.writeFile('/workspace/server.js', `
const express = require('express');
const app = express();
app.get('/', (req, res) => res.send('Hello from sandbox!'));
app.listen(3000, () => console.log('Server running on port 3000'));
  `);

  // Build Docker image
  console.log('üî® Building Docker image...');
  const buildResult = await sandbox.execute('docker', [
    'build', '-t', 'sandbox-app:latest', '/workspace'
  ]);

  if (buildResult.exitCode === 0) {
    console.log('‚úÖ Image built successfully');

    // List images
    const imagesResult = await sandbox.execute('docker', ['images']);
    console.log('Images:\n', imagesResult.stdout);
  } else {
    console.error('‚ùå Build failed:', buildResult.stderr);
  }

  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1849–1893: Code Examples › Example 8: Network Isolation Testing
async function snippet_examples_06_11_1849() {
async function networkIsolationTest() {
  const manager = new SandboxManager({ provider: 'docker' });

  // Test 1: No network access
  const isolatedSandbox = await manager.createSandbox({
    image: 'alpine:latest',
    networkMode: 'none',
    limits: { memoryMB: 128 }
  });

  await isolatedSandbox.start();

  console.log('Testing network isolation...');
  const pingResult = await isolatedSandbox.execute('ping', ['-c', '1', '8.8.8.8']);

  if (pingResult.exitCode !== 0) {
    console.log('‚úÖ Network correctly isolated (ping failed as expected)');
  } else {
    console.error('‚ùå Network isolation failed!');
  }

  await manager.destroySandbox(isolatedSandbox.id);

  // Test 2: Restricted network (specific hosts only)
  const restrictedSandbox = await manager.createSandbox({
    image: 'alpine:latest',
    networkMode: 'bridge',
    limits: { memoryMB: 128 }
  });

  await restrictedSandbox.start();

  // Install curl
  await restrictedSandbox.execute('apk', ['add', 'curl']);

  // Try allowed host
  const allowedResult = await restrictedSandbox.execute('curl', [
    '-s', '-o', '/dev/null', '-w', '%{http_code}',
    'https://api.github.com'
  ]);

  console.log('GitHub API access:', allowedResult.stdout);

  await manager.destroySandbox(restrictedSandbox.id);
}
}

// seed 000 lines 1899–1968: Code Examples › Example 9: Long-Running Background Job
async function snippet_examples_06_11_1899() {
async function backgroundJob() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'node:20-alpine',
    limits: {
      memoryMB: 512,
      cpuCores: 1,
      timeoutSeconds: 3600 // 1 hour
    }
  });

  await sandbox.start();

  // Write long-running script
  await sandbox.writeFile('/workspace/background.js', `
const fs = require('fs');

let progress = 0;
const total = 1000;

console.log('Starting long-running job...');

const interval = setInterval(() => {
    progress += 10;

    // Write progress to file
    fs.writeFileSync('/workspace/progress.json', JSON.stringify({
        progress: progress,
        total: total,
        percent: Math.round((progress / total) * 100)
    }));

    console.log(\`Progress: \${progress}/\${total}\`);

    if (progress >= total) {
        console.log('Job completed!');
        clearInterval(interval);
    }
}, 1000); // Update every second
  `);

  console.log('üöÄ Starting background job...');

  // Start job (non-blocking)
  const jobPromise = sandbox.execute('node', ['/workspace/background.js']);

  // Monitor progress
  const progressInterval = setInterval(async () => {
    const progressFile = await sandbox.readFile('/workspace/progress.json');

    if (progressFile.success && progressFile.content) {
      const progress = JSON.parse(progressFile.content);
      console.log(`üìä Progress: ${progress.percent}%`);

      if (progress.percent >= 100) {
        clearInterval(progressInterval);
      }
    }
  }, 5000); // Check every 5 seconds

  // Wait for completion
  const result = await jobPromise;
  clearInterval(progressInterval);

  console.log('‚úÖ Background job completed');
  console.log('Duration:', result.durationMs, 'ms');

  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1974–2031: Code Examples › Example 10: Security Sandbox Stress Test
async function snippet_examples_06_11_1974() {
async function securityStressTest() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'alpine:latest',
    limits: {
      memoryMB: 64,  // Very low
      cpuCores: 0.1,  // Very low
      timeoutSeconds: 30
    },
    networkMode: 'none'
  });

  await sandbox.start();

  console.log('üîí Running security stress tests...\n');

  // Test 1: Memory bomb
  console.log('Test 1: Memory allocation bomb');
  const memResult = await sandbox.execute('sh', ['-c', `
    while true; do
      cat /dev/zero | head -c 10M > /tmp/test_\${RANDOM}.bin
    done
  `]);
  console.log('Result:', memResult.timedOut ? '‚úÖ Terminated (timeout)' : '‚ùå Continued running');

  // Test 2: Fork bomb prevention
  console.log('\nTest 2: Fork bomb');
  const forkResult = await sandbox.execute('sh', ['-c', ':(){ :|:& };:']);
  console.log('Result:', forkResult.exitCode !== 0 ? '‚úÖ Blocked' : '‚ùå Executed');

  // Test 3: File system fill
  console.log('\nTest 3: Disk space exhaustion');
  const diskResult = await sandbox.execute('dd', [
    'if=/dev/zero',
    'of=/tmp/bigfile',
    'bs=1M',
    'count=1000'
  ]);
  console.log('Result:', diskResult.exitCode !== 0 ? '‚úÖ Limited' : '‚ö†Ô∏è  Succeeded');

  // Test 4: CPU saturation
  console.log('\nTest 4: CPU saturation');
  const cpuResult = await sandbox.execute('sh', ['-c',
    'while true; do :; done'
  ]);
  console.log('Result:', cpuResult.timedOut ? '‚úÖ Terminated' : '‚ùå Continued');

  // Check final stats
  const stats = await sandbox.getStats();
  console.log('\nFinal stats:');
  console.log('- Memory:', stats.memoryUsageMB, '/', 64, 'MB');
  console.log('- CPU:', stats.cpuPercent, '%');

  await manager.destroySandbox(sandbox.id);

  console.log('\n‚úÖ Security stress test completed');
}
}

// seed 000 lines 2037–2076: Code Examples › Example 11: Cross-Platform Compilation
async function snippet_examples_06_11_2037() {
async function crossPlatformCompilation() {
  const executor = new SandboxedAgentExecutor();

  // Compile for multiple platforms in parallel
  const platforms = [
    { name: 'Linux x64', image: 'golang:1.20-alpine', env: { GOOS: 'linux', GOARCH: 'amd64' } },
    { name: 'Windows x64', image: 'golang:1.20-alpine', env: { GOOS: 'windows', GOARCH: 'amd64' } },
    { name: 'macOS ARM', image: 'golang:1.20-alpine', env: { GOOS: 'darwin', GOARCH: 'arm64' } }
  ];

  const tasks = platforms.map(platform => ({
    task: `Compile Go application for ${platform.name}`,
    config: {
      agentName: `compiler-${platform.name}`,
      systemPrompt: 'You compile Go applications.',
      sandboxConfig: {
        provider: 'docker',
        image: platform.image,
        limits: { memoryMB: 512, cpuCores: 1 },
        env: platform.env
      },
      captureFiles: true,
      capturePatterns: ['*.exe', 'app', 'app.bin']
    }
  }));

  console.log('üî® Compiling for multiple platforms...\n');

  const results = await executor.executeParallel(tasks);

  results.forEach((result, i) => {
    const platform = platforms[i];
    console.log(`${platform.name}:`);
    console.log(`- Status: ${result.exitCode === 0 ? '‚úÖ' : '‚ùå'}`);
    console.log(`- Duration: ${result.durationMs}ms`);
    console.log(`- Binary size: ${result.files[0]?.content.length || 0} bytes\n`);
  });

  console.log('‚úÖ Cross-platform compilation completed');
}
}
