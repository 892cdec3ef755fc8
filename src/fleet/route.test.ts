import { describe, expect, it } from 'vitest';
import { parseLeaderRequest } from './requests.js';
import { routeRequest, splitNodeRef } from './route.js';

const base = { self: 'prod', acting: true, known: ['prod', 'staging'], needsLeader: true };

describe('routeRequest', () => {
  it('acts here for its own cluster while acting', () => {
    expect(routeRequest(base)).toEqual({ to: 'here' });
    expect(routeRequest({ ...base, cluster: 'prod' })).toEqual({ to: 'here' });
  });

  it('queues for its own leader while standing by, except reads it can answer', () => {
    expect(routeRequest({ ...base, acting: false })).toEqual({ to: 'queue', cluster: 'prod' });
    expect(routeRequest({ ...base, acting: false, needsLeader: false })).toEqual({ to: 'here' });
  });

  it('queues a request for another known cluster, even a read, even while acting', () => {
    expect(routeRequest({ ...base, cluster: 'staging' })).toEqual({ to: 'queue', cluster: 'staging' });
    expect(routeRequest({ ...base, cluster: 'staging', needsLeader: false })).toEqual({
      to: 'queue',
      cluster: 'staging',
    });
  });

  it('refuses an unknown cluster, listing the known ones', () => {
    expect(routeRequest({ ...base, cluster: 'qa', known: ['staging', 'prod'] })).toEqual({
      to: 'unknown-cluster',
      cluster: 'qa',
      known: ['prod', 'staging'],
    });
  });

  it('offers a choice for a bare node two clusters have, never a guess', () => {
    expect(routeRequest({ ...base, node: 'ip-10-0-1-2', nodeClusters: ['staging', 'prod'] })).toEqual({
      to: 'choose',
      options: ['prod/ip-10-0-1-2', 'staging/ip-10-0-1-2'],
    });
  });

  it('sends a bare node to the one cluster having it, and looks up an unpublished one here', () => {
    expect(routeRequest({ ...base, node: 'n', nodeClusters: ['staging'] })).toEqual({
      to: 'queue',
      cluster: 'staging',
    });
    expect(routeRequest({ ...base, node: 'n', nodeClusters: ['prod'] })).toEqual({ to: 'here' });
    expect(routeRequest({ ...base, node: 'n', nodeClusters: [] })).toEqual({ to: 'here' });
    // A named cluster wins over the node lookup.
    expect(routeRequest({ ...base, cluster: 'prod', node: 'n', nodeClusters: ['prod', 'staging'] })).toEqual({
      to: 'here',
    });
  });
});

describe('splitNodeRef', () => {
  it('splits at the first slash', () => {
    expect(splitNodeRef('prod/ip-1')).toEqual({ cluster: 'prod', node: 'ip-1' });
    expect(splitNodeRef('ip-1')).toEqual({ node: 'ip-1' });
    expect(splitNodeRef('a/b/c')).toEqual({ cluster: 'a', node: 'b/c' });
  });
});

describe('parseLeaderRequest', () => {
  it('accepts a click and a command', () => {
    const click = {
      kind: 'action',
      actionId: 'gpu_reboot',
      value: '{"i":"x","n":"y"}',
      userId: 'U1',
      channel: 'C1',
      threadTs: '1700000000.000100',
    };
    expect(parseLeaderRequest(click)).toEqual(click);
    expect(parseLeaderRequest({ kind: 'command', text: 'status', userId: 'U1', channel: 'C1' })).toEqual({
      kind: 'command',
      text: 'status',
      userId: 'U1',
      channel: 'C1',
    });
  });

  it('says what is wrong with a bad payload', () => {
    expect(parseLeaderRequest({ kind: 'action', userId: 'u1' })).toEqual({
      error: expect.stringMatching(/^invalid request payload: .*actionId.*userId: a Slack id/),
    });
    expect(parseLeaderRequest('not json')).toEqual({
      error: expect.stringContaining('invalid request payload'),
    });
  });
});
