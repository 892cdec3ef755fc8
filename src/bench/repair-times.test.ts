import { describe, expect, it } from 'vitest';
import { REPAIR_SIM_DELAYS, repairTimesMarkdown, runRepairTimes } from './repair-times.js';

describe('time to repair in the benchmark', () => {
  it('renders one line per action and phase, with the simulator delays it ran under', () => {
    const md = repairTimesMarkdown({
      samples: [
        { incidentId: 'a', action: 'reboot', phase: 'detection_to_cordon', seconds: 1 },
        { incidentId: 'b', action: 'reboot', phase: 'detection_to_cordon', seconds: 3 },
        { incidentId: 'a', action: 'reboot', phase: 'drained_to_healthy', seconds: 4.25 },
      ],
      unfinished: ['replace'],
      delays: REPAIR_SIM_DELAYS,
      monitorIntervalSeconds: 1,
    });
    expect(md).toContain('| reboot | detection to cordon | 2.0 |');
    expect(md).toContain('| reboot | drained to healthy | 4.3 |');
    expect(md).toContain('reboot 1.5 s');
    expect(md).toContain('Did not end resolved: replace.');
  });

  it('measures a reboot and a replace end to end on the simulator', async () => {
    const r = await runRepairTimes();
    expect(r.unfinished).toEqual([]);
    for (const action of ['reboot', 'replace']) {
      const phases = r.samples.filter((s) => s.action === action).map((s) => s.phase);
      expect(phases, action).toEqual(['detection_to_cordon', 'cordon_to_drained', 'drained_to_healthy']);
    }
  }, 120_000);
});
