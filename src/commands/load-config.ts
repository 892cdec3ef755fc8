import { type Config, ConfigError, loadConfig } from '../config/config.js';
import { CliError } from './cli-error.js';

/** loadConfig with errors turned into a one-screen message naming every bad variable. */
export function configOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
}
