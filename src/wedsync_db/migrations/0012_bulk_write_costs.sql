-- wedsync:allow blocking-lock-on-existing-table: each CREATE TRIGGER holds SHARE ROW EXCLUSIVE on its table for the milliseconds of this file (catalog changes only, no table is read or rewritten)
-- Cheaper bulk writes, same behaviour.
--
-- * A new row's version is 1 whatever the insert says (0009). The row trigger that made it so
--   ran for every inserted row; it now runs only for the rows that say otherwise (the column's
--   default is 1), so an insert of many rows no longer calls PL/pgSQL once per row. Updates
--   keep the trigger of 0009 as it was. Both stay named to fire after every other BEFORE
--   trigger of their table (a WHEN condition is evaluated just before its trigger would run,
--   so it sees what earlier triggers set).
-- * The change feed's statement trigger (0011) numbers and inserts one change per written row:
--   it now has the memory to sort and hold a bulk write's changes without spilling to disk.
--
-- Each CREATE [OR REPLACE] TRIGGER takes a brief SHARE ROW EXCLUSIVE lock on its table.

create or replace trigger zz_version before update on guests
    for each row execute function wedsync.touch_row('updated_at');
create or replace trigger zz_version before update on clients
    for each row execute function wedsync.touch_row('updated_at');
create or replace trigger zz_version before update on organizations
    for each row execute function wedsync.touch_row('updated_at');
create or replace trigger zz_version before update on weddings
    for each row execute function wedsync.touch_row('updated_at');
create or replace trigger zz_version before update on organization_members
    for each row execute function wedsync.touch_row();
create or replace trigger zz_version before update on wedding_members
    for each row execute function wedsync.touch_row();
create or replace trigger zz_version before update on wedding_vendors
    for each row execute function wedsync.touch_row();

create trigger zz_version_insert before insert on guests
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on clients
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on organizations
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on weddings
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on organization_members
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on wedding_members
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();
create trigger zz_version_insert before insert on wedding_vendors
    for each row when (new.version is distinct from 1) execute function wedsync.touch_row();

alter function feed.record_changes() set work_mem = '64MB';
