// `infermesh up` tells whoever chose the ports when the REST door or the console is on one that
// browsers and fetch() refuse (cli/up.ts refusedDoorLines, lib/fetch-ports.ts).
import { refusedDoorLines } from '../../../cli/up';

describe('refusedDoorLines', () => {
  it('names each door on a port browsers refuse, and only those', () => {
    expect(refusedDoorLines('127.0.0.1:6000', 'http://127.0.0.1:10080/')).toEqual([
      expect.stringMatching(/^infermesh: the HTTP\/REST door is on port 6000, which browsers and fetch\(\) refuse/),
      expect.stringMatching(/^infermesh: the console is on port 10080, which browsers and fetch\(\) refuse/),
    ]);
    expect(refusedDoorLines('127.0.0.1:8000', 'https://127.0.0.1:10080/')).toEqual([expect.stringContaining('the console is on port 10080')]);
    expect(refusedDoorLines('127.0.0.1:6666', 'http://127.0.0.1:8004/')).toEqual([expect.stringContaining('the HTTP/REST door is on port 6666')]);
  });

  it('says nothing for reachable ports or doors that are off', () => {
    expect(refusedDoorLines('127.0.0.1:8000', 'http://127.0.0.1:8004/')).toEqual([]);
    expect(refusedDoorLines(undefined, undefined)).toEqual([]);
    expect(refusedDoorLines('127.0.0.1:10081', undefined)).toEqual([]);
  });
});
