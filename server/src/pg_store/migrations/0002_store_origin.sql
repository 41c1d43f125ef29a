-- Where the store's data lives: the database's OID and the cluster's WAL timeline, as
-- the store last saw them. A dump restored into another database, or a cluster
-- recovered to a point in time (a new timeline), no longer matches: the store then
-- takes a new storage ID, so that devices, whose cursors promise what they have seen of
-- the old data, sync everything once instead of trusting them.
ALTER TABLE store_identity ADD COLUMN origin text;
