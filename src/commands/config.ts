import { ConfigError, loadConfig, redactedConfig } from '../config/config.js';
import { CliError } from './cli-error.js';

/** `gpu-medic config`: the effective configuration, secrets redacted. */
export async function main(_argv: string[]): Promise<number> {
  try {
    const config = loadConfig();
    console.log(JSON.stringify(redactedConfig(config), null, 2));
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
}
