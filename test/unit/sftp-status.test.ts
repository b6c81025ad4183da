import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  alreadyExists,
  GatewayError,
  invalidPath,
  isADirectory,
  notADirectory,
  notEmpty,
  notFound,
  permissionDenied,
  unsupported,
} from '../../src/errors.js';
import { StatusCode } from '../../src/protocol/sftp/constants.js';
import { GENERIC_FAILURE_MESSAGE, toStatus } from '../../src/protocol/sftp/status.js';

describe('toStatus', () => {
  it('maps each typed error to its SFTP status code', () => {
    const cases: Array<[Error, number]> = [
      [notFound('/a'), StatusCode.NO_SUCH_FILE],
      [permissionDenied('denied'), StatusCode.PERMISSION_DENIED],
      [alreadyExists('/a'), StatusCode.FAILURE],
      [notEmpty('/d'), StatusCode.FAILURE],
      [notADirectory('/f'), StatusCode.FAILURE],
      [isADirectory('/d'), StatusCode.FAILURE],
      [invalidPath('path contains NUL'), StatusCode.NO_SUCH_FILE],
      [unsupported('symlinks'), StatusCode.OP_UNSUPPORTED],
      [new GatewayError('PreconditionFailed', 'object changed during the read'), StatusCode.FAILURE],
      [new GatewayError('StoreUnavailable', 'storage unavailable, try again'), StatusCode.FAILURE],
      [new GatewayError('QuotaExceeded', 'quota exceeded'), StatusCode.FAILURE],
      [new GatewayError('Failure', 'invalid handle'), StatusCode.FAILURE],
    ];
    for (const [err, code] of cases) assert.equal(toStatus(err).code, code, err.name);
  });

  it('never answers NO_CONNECTION, which only clients generate', () => {
    assert.notEqual(toStatus(new GatewayError('StoreUnavailable', 'x')).code, StatusCode.NO_CONNECTION);
  });

  it('passes typed messages through, except the fixed "already exists"', () => {
    assert.equal(toStatus(notFound('/x/y')).message, 'no such file or directory: /x/y');
    assert.equal(toStatus(alreadyExists('/x/y')).message, 'already exists');
    assert.equal(
      toStatus(new GatewayError('StoreUnavailable', 'storage unavailable, try again')).message,
      'storage unavailable, try again',
    );
  });

  it('gives a readable default when a typed error has no message', () => {
    assert.match(toStatus(new GatewayError('StoreUnavailable', '')).message, /unavailable/);
  });

  it('hides unknown errors behind a generic failure', () => {
    const err = new Error('ECONNRESET at Socket.<anonymous> (/app/node_modules/secret.js:1:1)');
    assert.deepEqual(toStatus(err), { code: StatusCode.FAILURE, message: GENERIC_FAILURE_MESSAGE });
    assert.deepEqual(toStatus('a string'), { code: StatusCode.FAILURE, message: GENERIC_FAILURE_MESSAGE });
    assert.deepEqual(toStatus(undefined), { code: StatusCode.FAILURE, message: GENERIC_FAILURE_MESSAGE });
  });
});
