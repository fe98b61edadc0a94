import { describe, expect, it } from 'vitest';
import { assertNoCredentials, directUri, parseMongoUri, parseShardHost, replicaSetUri } from './target.ts';

describe('mongo target URIs', () => {
  it('parses members, database and options', () => {
    expect(parseMongoUri('mongodb://a:1,b/admin?replicaSet=rs0&tls=true')).toEqual({
      hosts: ['a:1', 'b:27017'],
      database: 'admin',
      options: [['replicaSet', 'rs0'], ['tls', 'true']],
      hasUserinfo: false,
    });
  });

  it.each(['mongodb://u:p@h:1/', 'mongodb://u@h:1', 'mongodb://h:1/?password=x'])('refuses credentials in %s', (uri) => {
    expect(() => assertNoCredentials(uri)).toThrow(/must not contain credentials.*CUTPOINT_MONGO_USERNAME/);
  });

  it('names what is wrong', () => {
    expect(() => parseMongoUri('mongodb+srv://c.example.net')).toThrow(/mongodb\+srv/);
    expect(() => parseMongoUri('http://x')).toThrow(/not a mongodb:\/\/ connection string/);
    expect(() => parseMongoUri('mongodb://u:secret@')).toThrow(/\*\*\*/);
  });

  it('builds a direct URI for one member, keeping TLS options and dropping the set', () => {
    expect(directUri('mongodb://a:1,b:2/?replicaSet=rs0&tls=true&authSource=admin', 'b:2')).toBe(
      'mongodb://b:2/?tls=true&authSource=admin&directConnection=true&readPreference=primaryPreferred',
    );
  });

  it('builds a replica-set URI from a mongos URI, keeping its options', () => {
    expect(replicaSetUri('mongodb://mongos:27017/?tls=true&authSource=admin', 'shard1', ['s1a:27018', 's1b:27018'])).toBe(
      'mongodb://s1a:27018,s1b:27018/?tls=true&authSource=admin&replicaSet=shard1',
    );
  });

  it('parses shard connection strings and names a bad one', () => {
    expect(parseShardHost('cfg/h1:1,h2:2')).toEqual({ name: 'cfg', hosts: ['h1:1', 'h2:2'] });
    expect(() => parseShardHost('h1:1,h2:2')).toThrow(/not a replica-set connection string/);
  });
});
