// Seed 000, Code Examples 1–5: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxManager, SandboxedAgentExecutor } from '../../index.js'

// seed 000 lines 1470–1494: Code Examples › Example 1: Basic Sandbox Usage
async function snippet_examples_01_05_1470() {
// import { SandboxManager } from './examples/sandbox-integration/sandbox-manager.js';  <- see the imports at the top of this file

async function basicUsage() {
  const manager = new SandboxManager({ provider: 'docker' });

  // Create sandbox
  const sandbox = await manager.createSandbox({
    image: 'node:20-alpine',
    limits: { memoryMB: 256, timeoutSeconds: 60 }
  });

  await sandbox.start();

  // Write script
  await sandbox.writeFile('/workspace/hello.js', `
    console.log('Hello from sandbox!');
  `);

  // Execute
  const result = await sandbox.execute('node', ['/workspace/hello.js']);
  console.log(result.stdout);

  // Cleanup
  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1500–1541: Code Examples › Example 2: Python Data Analysis
async function snippet_examples_01_05_1500() {
async function dataAnalysis() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'python:3.11-slim',
    limits: { memoryMB: 512, cpuCores: 1 }
  });

  await sandbox.start();

  // Write data
  const csvData = 'name,age,city\nAlice,30,NYC\nBob,25,LA';
  await sandbox.writeFile('/workspace/data.csv', csvData);

  // Write analysis script
  await sandbox.writeFile('/workspace/analyze.py', `
import csv
import json

with open('/workspace/data.csv', 'r') as f:
    reader = csv.DictReader(f)
    data = list(reader)

    avg_age = sum(int(row['age']) for row in data) / len(data)

    result = {
        'total': len(data),
        'avg_age': avg_age,
        'cities': [row['city'] for row in data]
    }

    print(json.dumps(result, indent=2))
  `);

  // Execute analysis
  const result = await sandbox.execute('python3', ['/workspace/analyze.py']);
  const analysis = JSON.parse(result.stdout);

  console.log('Analysis results:', analysis);

  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1547–1594: Code Examples › Example 3: Rust Compilation
async function snippet_examples_01_05_1547() {
async function rustCompilation() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'rust:1.70-alpine',
    limits: { memoryMB: 1024, cpuCores: 2, timeoutSeconds: 300 }
  });

  await sandbox.start();

  // Write Rust code
  await sandbox.writeFile('/workspace/main.rs', `
fn fibonacci(n: u32) -> u32 {
    match n {
        0 => 0,
        1 => 1,
        _ => fibonacci(n - 1) + fibonacci(n - 2),
    }
}

fn main() {
    for i in 0..10 {
        println!("fib({}) = {}", i, fibonacci(i));
    }
}
  `);

  // Compile
  console.log('Compiling Rust code...');
  const compileResult = await sandbox.execute('rustc', [
    '/workspace/main.rs',
    '-o', '/workspace/main',
    '--edition=2021'
  ]);

  if (compileResult.exitCode !== 0) {
    console.error('Compilation failed:', compileResult.stderr);
    return;
  }

  console.log('‚úÖ Compilation successful');

  // Execute
  const runResult = await sandbox.execute('/workspace/main');
  console.log('Output:\n', runResult.stdout);

  await manager.destroySandbox(sandbox.id);
}
}

// seed 000 lines 1600–1655: Code Examples › Example 4: Multi-Language Pipeline
async function snippet_examples_01_05_1600() {
async function multiLanguagePipeline() {
  const executor = new SandboxedAgentExecutor();

  // Step 1: Generate data with Python
  const pythonResult = await executor.execute(
    'Generate random data and save to JSON',
    {
      agentName: 'data-generator',
      systemPrompt: 'You generate test data.',
      sandboxConfig: {
        provider: 'docker',
        image: 'python:3.11-slim',
        limits: { memoryMB: 256 }
      },
      captureFiles: true,
      capturePatterns: ['*.json']
    }
  );

  // Step 2: Process with Node.js
  const nodeResult = await executor.execute(
    'Read JSON data and transform it',
    {
      agentName: 'data-processor',
      systemPrompt: 'You process data with JavaScript.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: { memoryMB: 256 }
      },
      captureFiles: true,
      capturePatterns: ['*.json']
    }
  );

  // Step 3: Analyze with Rust
  const rustResult = await executor.execute(
    'Analyze processed data for patterns',
    {
      agentName: 'data-analyzer',
      systemPrompt: 'You analyze data with Rust.',
      sandboxConfig: {
        provider: 'docker',
        image: 'rust:1.70-alpine',
        limits: { memoryMB: 512, cpuCores: 1 }
      },
      captureFiles: true,
      capturePatterns: ['*.txt', '*.json']
    }
  );

  console.log('Pipeline completed:');
  console.log('- Python generated:', pythonResult.files.length, 'files');
  console.log('- Node.js processed:', nodeResult.files.length, 'files');
  console.log('- Rust analyzed:', rustResult.files.length, 'files');
}
}

// seed 000 lines 1661–1720: Code Examples › Example 5: GPU-Accelerated ML Training
async function snippet_examples_01_05_1661() {
async function gpuMlTraining() {
  const manager = new SandboxManager({ provider: 'docker' });

  const sandbox = await manager.createSandbox({
    image: 'tensorflow/tensorflow:latest-gpu',
    limits: {
      memoryMB: 4096,
      cpuCores: 2,
      timeoutSeconds: 1800 // 30 minutes
    },
    gpu: true,  // Enable GPU access
    env: {
      NVIDIA_VISIBLE_DEVICES: 'all'
    }
  });

  await sandbox.start();

  // Write training script
  await sandbox.writeFile('/workspace/train.py', `
import tensorflow as tf
import numpy as np

# Check GPU availability
print("GPUs available:", len(tf.config.list_physical_devices('GPU')))

# Simple model
model = tf.keras.Sequential([
    tf.keras.layers.Dense(128, activation='relu', input_shape=(784,)),
    tf.keras.layers.Dense(10, activation='softmax')
])

model.compile(
    optimizer='adam',
    loss='sparse_categorical_crossentropy',
    metrics=['accuracy']
)

# Generate dummy data
X_train = np.random.rand(1000, 784)
y_train = np.random.randint(0, 10, 1000)

# Train
history = model.fit(X_train, y_train, epochs=10, batch_size=32)

print("Training completed!")
print("Final accuracy:", history.history['accuracy'][-1])
  `);

  console.log('üöÄ Starting GPU training...');
  const result = await sandbox.execute('python3', ['/workspace/train.py']);

  console.log(result.stdout);

  // Get resource usage
  const stats = await sandbox.getStats();
  console.log('Peak memory usage:', stats.memoryUsageMB, 'MB');

  await manager.destroySandbox(sandbox.id);
}
}
