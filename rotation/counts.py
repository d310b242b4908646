"""The home page's counts, kept by the database: triggers, rebuild and check.

What is counted (rotation/models.py, bottom):

- ``rotation_record_status``: one row per PAM User with its latest rotation (by created_at,
  then id), that rotation's status ("" when the record was never rotated) and finished_at;
- ``rotation_status_count``: per folder and latest-rotation status, how many records;
- ``rotation_slot_count``: per folder, 15-minute slot of finished_at and outcome (succeeded or
  failed), how many rotations: the 30-day chart.

Triggers on ``rotation_rotation`` (insert, delete, update of status, created_at, finished_at or
pam_user_id), ``vault_pamuser`` (insert, delete, update of folder_id) and
``vault_sharedfolder`` (delete) keep them, in the transaction that makes the change, whichever
code makes it: the engine's conditional UPDATEs and bulk inserts, the admin, a data fix, a
test's ``bulk_create``. For one record, every trigger does the same thing: *recompute* it (read
its latest rotation and its folder, compare them with its ``rotation_record_status`` row, move
the record from the old count to the new one if they differ, store the new row), then add or
remove the one rotation that changed from its chart slot. Recomputing is idempotent and reads
the rows as they are, so the order in which triggers fire, a statement touching several
rotations of one record, or a rotation inserted with an older created_at than the latest,
change nothing.

SQLite has one writer at a time: its triggers change the counts directly.

PostgreSQL runs writers concurrently (READ COMMITTED, Django's default):

- The record's ``rotation_record_status`` row is the lock that orders every change to that
  record's counts: recompute takes it (``FOR UPDATE``) first and only then reads the record's
  folder and latest rotation, each statement with a fresh snapshot. Two transactions changing
  the same record therefore recompute one after the other, and the second sees what the first
  committed: the last recompute of a record always reads the truth.
- Count rows are shared by every record of a folder: updating them in place from row triggers
  would take their locks in whatever order transactions change records, and two transactions
  could wait for each other (a deadlock: PostgreSQL would abort one of them, a rotation's
  transaction). So the triggers append their changes to ``rotation_count_delta`` (an insert
  locks nothing shared), and at commit a deferred constraint trigger adds them to the counts,
  summed per key, in one pass sorted by (folder, table, key): every transaction takes count
  rows in the same order, and holds them only for the end of its commit. That trigger fires
  on one marker row (folder 0) per transaction, written with the first change (a
  transaction-local setting remembers it), so a transaction of 10,000 changes applies them
  once, not 10,000 times.
- Inserts fire statement-level triggers (transition tables: every row the statement
  inserted), not row triggers: ``rotation_counts_recompute_many`` recomputes the statement's
  records together, each step above one set-based statement over all of them, their rows
  locked in id order (so two bulk inserts sharing records never wait for each other in opposite
  orders), and appends their changes summed per key. The scheduler's batch of a thousand
  queued rotations costs a few statements instead of a thousand recomputes. Fewer than ten
  records are recomputed one at a time (planning the set-based statements costs more).
  Updates do the same (``rotation_counts_on_rotation_update``: the statement's rows as they
  were and as they are, only those whose status, created_at, finished_at or record changed):
  a gateway's claim and finish of a batch are one recompute each, not one per rotation (issue
  10's profile on PostgreSQL: the row triggers cost 0.19 ms per rotation and status change).
  Deletes keep row triggers.
- Readers add the ``rotation_count_delta`` rows they can see to the counts. Other
  transactions' rows are never visible (uncommitted, then deleted by the commit that adds
  them), so this is only the reader's own open transaction: a test, or a view that reads
  after it wrote.

Migrations on SQLite: SQLite alters a table by rebuilding it (copy, drop, rename), and the
rename fails while a trigger on another table names the dropped one. So ``migrate`` drops these
triggers before it runs any migration (rotation/apps.py) and, once every migration has run,
installs them again and rebuilds the counts from the rows. Migration 0005 installs them itself
only on PostgreSQL, where ALTER TABLE keeps them.

What can make the counts drift, and the repair: anything that changes the source tables
without firing row triggers (PostgreSQL: TRUNCATE of one table alone, ``session_replication_
role = replica`` as during some restores; SQLite: writes while a ``migrate`` that failed midway
left the triggers out). After every ``migrate`` (and ``flush``) missing, disabled or outdated
triggers are reinstalled and the counts rebuilt; ``manage.py rotation_counts`` checks the counts
against the rows they derive from (and says when a trigger is missing), and ``--rebuild``
recomputes them, under locks that keep writers out meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, transaction

SLOT_SECONDS = 900  # rotation_slot_count's slot: Unix seconds // 900
VERSION = "rotation-counts v4"  # change when the SQL below changes: migrate reinstalls it


def slot_of(when: datetime) -> int:
    return int(when.timestamp()) // SLOT_SECONDS


def slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, tz=UTC)


# --- SQLite ---------------------------------------------------------------------------------

# Django stores datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' UTC; SQLite rounds fractions to
# milliseconds (23:59:59.9996 would become the next day), so the slot reads whole seconds.
_SQLITE_SLOT = "CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) / 900"
_SQLITE_LATEST = (
    "SELECT r.{col} FROM rotation_rotation r WHERE r.pam_user_id = {who} "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT 1"
)


def _sqlite_slot(column: str) -> str:
    return _SQLITE_SLOT.format(column)


def _sqlite_finished(row: str) -> str:
    return f"{row}.status IN ('succeeded', 'failed') AND {row}.finished_at IS NOT NULL"


_SQLITE_CURRENT_STATUS = "COALESCE((" + _SQLITE_LATEST.format(col="status", who="pu.id") + "), '')"

SQLITE_OBJECTS = [
    # "Procedures": inserting into these views runs their INSTEAD OF trigger.
    ("view", "rotation_counts_recompute", "SELECT NULL AS pam_user_id WHERE 0"),
    (
        "view",
        "rotation_counts_slot",
        "SELECT NULL AS folder_id, NULL AS slot, NULL AS status, NULL AS n WHERE 0",
    ),
    (
        "trigger",
        "rotation_counts_recompute_do",
        f"""INSTEAD OF INSERT ON rotation_counts_recompute
BEGIN
  SELECT '{VERSION}';
  -- Out of the count it was in, if that is not its count any more (or it is gone).
  UPDATE rotation_status_count SET n = n - 1
  WHERE (folder_id, status) = (
      SELECT folder_id, status FROM rotation_record_status WHERE pam_user_id = NEW.pam_user_id)
    AND (folder_id, status) IS NOT (
      SELECT pu.folder_id, {_SQLITE_CURRENT_STATUS}
      FROM vault_pamuser pu WHERE pu.id = NEW.pam_user_id);
  -- Into its current count, if it was not in it.
  INSERT INTO rotation_status_count (folder_id, status, n)
  SELECT cur.folder_id, cur.status, 1 FROM (
      SELECT pu.folder_id AS folder_id, {_SQLITE_CURRENT_STATUS} AS status
      FROM vault_pamuser pu
      WHERE pu.id = NEW.pam_user_id
        AND EXISTS (SELECT 1 FROM vault_sharedfolder f WHERE f.id = pu.folder_id)) AS cur
  WHERE (cur.folder_id, cur.status) IS NOT (
      SELECT folder_id, status FROM rotation_record_status WHERE pam_user_id = NEW.pam_user_id)
  ON CONFLICT (folder_id, status) DO UPDATE SET n = n + 1;
  DELETE FROM rotation_record_status
  WHERE pam_user_id = NEW.pam_user_id
    AND NOT EXISTS (SELECT 1 FROM vault_pamuser WHERE id = NEW.pam_user_id);
  INSERT INTO rotation_record_status (pam_user_id, folder_id, status, rotation_id, finished_at)
  SELECT pu.id, pu.folder_id, COALESCE(latest.status, ''), latest.id, latest.finished_at
  FROM vault_pamuser pu LEFT JOIN (
      SELECT r.id, r.status, r.finished_at FROM rotation_rotation r
      WHERE r.pam_user_id = NEW.pam_user_id
      ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS latest
  WHERE pu.id = NEW.pam_user_id
  ON CONFLICT (pam_user_id) DO UPDATE SET
    folder_id = excluded.folder_id, status = excluded.status,
    rotation_id = excluded.rotation_id, finished_at = excluded.finished_at;
END""",
    ),
    (
        "trigger",
        "rotation_counts_slot_do",
        """INSTEAD OF INSERT ON rotation_counts_slot
WHEN NEW.n <> 0 AND EXISTS (SELECT 1 FROM vault_sharedfolder f WHERE f.id = NEW.folder_id)
BEGIN
  INSERT INTO rotation_slot_count (folder_id, slot, status, n)
  VALUES (NEW.folder_id, NEW.slot, NEW.status, NEW.n)
  ON CONFLICT (folder_id, slot, status) DO UPDATE SET n = n + excluded.n;
END""",
    ),
    (
        "trigger",
        "rotation_counts_rotation_insert",
        f"""AFTER INSERT ON rotation_rotation
BEGIN
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (NEW.pam_user_id);
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT pu.folder_id, {_sqlite_slot("NEW.finished_at")}, NEW.status, 1
  FROM vault_pamuser pu WHERE pu.id = NEW.pam_user_id AND {_sqlite_finished("NEW")};
END""",
    ),
    (
        "trigger",
        "rotation_counts_rotation_update",
        f"""AFTER UPDATE OF status, created_at, finished_at, pam_user_id ON rotation_rotation
WHEN OLD.status IS NOT NEW.status OR OLD.created_at IS NOT NEW.created_at
  OR OLD.finished_at IS NOT NEW.finished_at OR OLD.pam_user_id IS NOT NEW.pam_user_id
BEGIN
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT pu.folder_id, {_sqlite_slot("OLD.finished_at")}, OLD.status, -1
  FROM vault_pamuser pu WHERE pu.id = OLD.pam_user_id AND {_sqlite_finished("OLD")};
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT pu.folder_id, {_sqlite_slot("NEW.finished_at")}, NEW.status, 1
  FROM vault_pamuser pu WHERE pu.id = NEW.pam_user_id AND {_sqlite_finished("NEW")};
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (OLD.pam_user_id);
  INSERT INTO rotation_counts_recompute (pam_user_id)
  SELECT NEW.pam_user_id WHERE NEW.pam_user_id IS NOT OLD.pam_user_id;
END""",
    ),
    (
        "trigger",
        "rotation_counts_rotation_delete",
        f"""AFTER DELETE ON rotation_rotation
BEGIN
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT pu.folder_id, {_sqlite_slot("OLD.finished_at")}, OLD.status, -1
  FROM vault_pamuser pu WHERE pu.id = OLD.pam_user_id AND {_sqlite_finished("OLD")};
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (OLD.pam_user_id);
END""",
    ),
    (
        "trigger",
        "rotation_counts_pam_user_insert",
        """AFTER INSERT ON vault_pamuser
BEGIN
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (NEW.id);
END""",
    ),
    (
        "trigger",
        "rotation_counts_pam_user_move",
        f"""AFTER UPDATE OF folder_id ON vault_pamuser
WHEN OLD.folder_id IS NOT NEW.folder_id
BEGIN
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT OLD.folder_id, {_sqlite_slot("r.finished_at")}, r.status, -COUNT(*)
  FROM rotation_rotation r WHERE r.pam_user_id = NEW.id AND {_sqlite_finished("r")}
  GROUP BY {_sqlite_slot("r.finished_at")}, r.status;
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT NEW.folder_id, {_sqlite_slot("r.finished_at")}, r.status, COUNT(*)
  FROM rotation_rotation r WHERE r.pam_user_id = NEW.id AND {_sqlite_finished("r")}
  GROUP BY {_sqlite_slot("r.finished_at")}, r.status;
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (NEW.id);
END""",
    ),
    (
        "trigger",
        "rotation_counts_pam_user_delete",
        f"""AFTER DELETE ON vault_pamuser
BEGIN
  -- Django deletes a record's rotations first; anything left is taken out here.
  INSERT INTO rotation_counts_slot (folder_id, slot, status, n)
  SELECT OLD.folder_id, {_sqlite_slot("r.finished_at")}, r.status, -COUNT(*)
  FROM rotation_rotation r WHERE r.pam_user_id = OLD.id AND {_sqlite_finished("r")}
  GROUP BY {_sqlite_slot("r.finished_at")}, r.status;
  INSERT INTO rotation_counts_recompute (pam_user_id) VALUES (OLD.id);
END""",
    ),
    (
        "trigger",
        "rotation_counts_folder_delete",
        """AFTER DELETE ON vault_sharedfolder
BEGIN
  DELETE FROM rotation_status_count WHERE folder_id = OLD.id;
  DELETE FROM rotation_slot_count WHERE folder_id = OLD.id;
END""",
    ),
]


def _sqlite_install(cursor) -> None:
    for kind, name, _ in reversed(SQLITE_OBJECTS):
        cursor.execute(f"DROP {kind.upper()} IF EXISTS {name}")
    for kind, name, body in SQLITE_OBJECTS:
        if kind == "view":
            cursor.execute(f"CREATE VIEW {name} AS {body}")
        else:
            cursor.execute(f"CREATE TRIGGER {name} {body}")


def _sqlite_installed(cursor) -> bool:
    cursor.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'rotation\\_counts\\_%' "
        "ESCAPE '\\'"
    )
    found = {(kind, name): sql for kind, name, sql in cursor.fetchall()}
    return all((kind, name) in found for kind, name, _ in SQLITE_OBJECTS) and VERSION in (
        found.get(("trigger", "rotation_counts_recompute_do")) or ""
    )


# --- PostgreSQL -----------------------------------------------------------------------------

_PG_FINISHED = "{0}.status IN ('succeeded', 'failed') AND {0}.finished_at IS NOT NULL"
# A rotation's change that moves a count: o is the row as it was, n as it is.
_PG_ROW_CHANGED = (
    "(o.status, o.created_at, o.finished_at, o.pam_user_id) "
    "IS DISTINCT FROM (n.status, n.created_at, n.finished_at, n.pam_user_id)"
)

POSTGRES_FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION rotation_counts_slot(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT floor(extract(epoch FROM ts) / 900)::bigint $$;

-- Once per transaction, a marker row (folder 0) whose deferred trigger adds the transaction's
-- changes to the counts at commit (rotation_counts_apply, which clears the flag).
CREATE OR REPLACE FUNCTION rotation_counts_apply_at_commit() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('rotation_counts.marked', true) IS DISTINCT FROM '1' THEN
    PERFORM set_config('rotation_counts.marked', '1', true);
    INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
    VALUES (txid_current(), 0, '', NULL, 0);
  END IF;
END $$;

-- A change to a count, added to it when the transaction commits.
CREATE OR REPLACE FUNCTION rotation_counts_add(f bigint, s varchar, sl bigint, d bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF f IS NOT NULL AND d <> 0 THEN
    INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
    VALUES (txid_current(), f, s, sl, d);
    PERFORM rotation_counts_apply_at_commit();
  END IF;
END $$;

-- Recompute one record (see rotation/counts.py); returns its folder, NULL when it is gone.
CREATE OR REPLACE FUNCTION rotation_counts_recompute(x bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  had boolean; old_folder bigint; old_status varchar; f bigint;
  l_id bigint; l_status varchar; l_finished timestamptz;
BEGIN
  -- '{VERSION}'
  LOOP
    -- The lock first (the record's row), then the truth, each read with a snapshot taken
    -- after the lock.
    SELECT folder_id, status INTO old_folder, old_status
    FROM rotation_record_status WHERE pam_user_id = x FOR UPDATE;
    had := FOUND;
    SELECT folder_id INTO f FROM vault_pamuser WHERE id = x;
    IF f IS NULL THEN  -- the record is gone
      IF had THEN
        DELETE FROM rotation_record_status WHERE pam_user_id = x;
        PERFORM rotation_counts_add(old_folder, old_status, NULL, -1);
      END IF;
      RETURN NULL;
    END IF;
    SELECT id, status, finished_at INTO l_id, l_status, l_finished
    FROM rotation_rotation WHERE pam_user_id = x ORDER BY created_at DESC, id DESC LIMIT 1;
    l_status := COALESCE(l_status, '');
    IF had THEN
      UPDATE rotation_record_status
      SET folder_id = f, status = l_status, rotation_id = l_id, finished_at = l_finished
      WHERE pam_user_id = x
        AND (folder_id, status, rotation_id, finished_at)
            IS DISTINCT FROM (f, l_status, l_id, l_finished);
      IF old_folder <> f OR old_status <> l_status THEN
        PERFORM rotation_counts_add(old_folder, old_status, NULL, -1);
        PERFORM rotation_counts_add(f, l_status, NULL, 1);
      END IF;
      RETURN f;
    END IF;
    -- A new record (or one whose row is missing). Another transaction recomputing it at the
    -- same time waits for this insert and then recomputes with what this one commits.
    INSERT INTO rotation_record_status (pam_user_id, folder_id, status, rotation_id, finished_at)
    VALUES (x, f, l_status, l_id, l_finished)
    ON CONFLICT (pam_user_id) DO NOTHING;
    IF FOUND THEN
      PERFORM rotation_counts_add(f, l_status, NULL, 1);
      RETURN f;
    END IF;
    -- Made meanwhile by a transaction that has committed since: lock it and compare.
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION rotation_counts_on_rotation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE f bigint;
BEGIN
  -- DELETE: the record recomputed, the rotation out of its chart slot.
  f := rotation_counts_recompute(OLD.pam_user_id);
  IF {_PG_FINISHED.format("OLD")} THEN
    PERFORM rotation_counts_add(f, OLD.status, rotation_counts_slot(OLD.finished_at), -1);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rotation_counts_on_pam_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM rotation_counts_recompute(NEW.id);
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    PERFORM rotation_counts_recompute(NEW.id);  -- takes the record's lock first
    -- The record's chart history moves with it (read after the lock).
    INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
    SELECT txid_current(), moved.folder_id, r.status, rotation_counts_slot(r.finished_at),
           moved.sign * COUNT(*)
    FROM rotation_rotation r
    CROSS JOIN (VALUES (OLD.folder_id, -1), (NEW.folder_id, 1)) AS moved (folder_id, sign)
    WHERE r.pam_user_id = NEW.id AND {_PG_FINISHED.format("r")}
    GROUP BY moved.folder_id, moved.sign, r.status, rotation_counts_slot(r.finished_at);
    PERFORM rotation_counts_apply_at_commit();
    RETURN NULL;
  END IF;
  -- DELETE: Django deletes a record's rotations first; anything left is taken out here.
  PERFORM rotation_counts_recompute(OLD.id);
  INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
  SELECT txid_current(), OLD.folder_id, r.status, rotation_counts_slot(r.finished_at), -COUNT(*)
  FROM rotation_rotation r WHERE r.pam_user_id = OLD.id AND {_PG_FINISHED.format("r")}
  GROUP BY r.status, rotation_counts_slot(r.finished_at);
  PERFORM rotation_counts_apply_at_commit();
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rotation_counts_on_folder() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- A marker: at commit, the counts of a folder that no longer exists are deleted.
  INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
  VALUES (txid_current(), OLD.id, '', NULL, 0);
  PERFORM rotation_counts_apply_at_commit();
  RETURN NULL;
END $$;

-- Recompute a set of records at once, for statement-level triggers: the steps of
-- rotation_counts_recompute, each one statement over the whole set, the records' rows locked in
-- id order (so two such statements never wait for each other in opposite orders), their
-- changes to the counts summed per key. Returns each record that exists, with its folder.
CREATE OR REPLACE FUNCTION rotation_counts_recompute_many(ids bigint[])
RETURNS TABLE (record_id bigint, record_folder bigint)
LANGUAGE plpgsql AS $$
DECLARE
  wanted bigint[] := ARRAY(SELECT DISTINCT u.x FROM unnest(ids) AS u (x)
                         WHERE u.x IS NOT NULL ORDER BY u.x);
  locked bigint[]; rec_ids bigint[]; rec_folders bigint[]; n_added bigint;
  made_ids bigint[]; made_folders bigint[]; x bigint; f bigint;
BEGIN
  -- '{VERSION}'
  IF cardinality(wanted) < 10 THEN
    -- A few records (a model's save, a small batch): one at a time is cheaper than planning
    -- the statements below.
    FOREACH x IN ARRAY wanted LOOP
      f := rotation_counts_recompute(x);
      IF f IS NOT NULL THEN
        record_id := x;
        record_folder := f;
        RETURN NEXT;
      END IF;
    END LOOP;
    RETURN;
  END IF;
  WHILE cardinality(wanted) > 0 LOOP
    -- The locks first (the records' rows), then the truth, read by later statements (each
    -- with a snapshot taken after the locks).
    locked := ARRAY(SELECT rs.pam_user_id FROM rotation_record_status rs
                    WHERE rs.pam_user_id = ANY (wanted) ORDER BY rs.pam_user_id FOR UPDATE);
    IF cardinality(locked) > 0 THEN
      WITH cur AS (
        SELECT rs.pam_user_id, rs.folder_id AS old_folder, rs.status AS old_status,
               pu.folder_id AS f, COALESCE(l.status, '') AS s, l.id AS l_id,
               l.finished_at AS l_finished
        FROM rotation_record_status rs
        LEFT JOIN vault_pamuser pu ON pu.id = rs.pam_user_id
        LEFT JOIN LATERAL (
          SELECT r.id, r.status, r.finished_at FROM rotation_rotation r
          WHERE r.pam_user_id = rs.pam_user_id ORDER BY r.created_at DESC, r.id DESC LIMIT 1
        ) AS l ON true
        WHERE rs.pam_user_id = ANY (locked)
      ), gone AS (  -- records that no longer exist
        DELETE FROM rotation_record_status rs USING cur
        WHERE rs.pam_user_id = cur.pam_user_id AND cur.f IS NULL
      ), changed AS (
        UPDATE rotation_record_status rs
        SET folder_id = cur.f, status = cur.s, rotation_id = cur.l_id,
            finished_at = cur.l_finished
        FROM cur
        WHERE rs.pam_user_id = cur.pam_user_id AND cur.f IS NOT NULL
          AND (rs.folder_id, rs.status, rs.rotation_id, rs.finished_at)
              IS DISTINCT FROM (cur.f, cur.s, cur.l_id, cur.l_finished)
      ), moves AS (  -- out of the count each was in, into its current one
        SELECT cur.old_folder AS folder_id, cur.old_status AS status, -1 AS n FROM cur
        WHERE cur.f IS NULL OR cur.old_folder <> cur.f OR cur.old_status <> cur.s
        UNION ALL
        SELECT cur.f, cur.s, 1 FROM cur
        WHERE cur.f IS NOT NULL AND (cur.old_folder <> cur.f OR cur.old_status <> cur.s)
      ), added AS (
        INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
        SELECT txid_current(), m.folder_id, m.status, NULL, SUM(m.n) FROM moves m
        WHERE m.folder_id IS NOT NULL
        GROUP BY m.folder_id, m.status HAVING SUM(m.n) <> 0
        RETURNING 1
      )
      SELECT array_agg(cur.pam_user_id) FILTER (WHERE cur.f IS NOT NULL),
             array_agg(cur.f) FILTER (WHERE cur.f IS NOT NULL), (SELECT count(*) FROM added)
      INTO rec_ids, rec_folders, n_added FROM cur;
      IF n_added > 0 THEN
        PERFORM rotation_counts_apply_at_commit();
      END IF;
      RETURN QUERY SELECT * FROM unnest(rec_ids, rec_folders);
    END IF;
    -- New records (or ones whose row is missing). Another transaction making the same row
    -- meanwhile makes this insert wait for it, and then skip it: those go round again.
    wanted := ARRAY(SELECT u.x FROM unnest(wanted) AS u (x) EXCEPT SELECT unnest(locked));
    EXIT WHEN cardinality(wanted) = 0;
    WITH made AS (
      INSERT INTO rotation_record_status
        (pam_user_id, folder_id, status, rotation_id, finished_at)
      SELECT pu.id, pu.folder_id, COALESCE(l.status, ''), l.id, l.finished_at
      FROM vault_pamuser pu
      LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at FROM rotation_rotation r
        WHERE r.pam_user_id = pu.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1
      ) AS l ON true
      WHERE pu.id = ANY (wanted)
      ORDER BY pu.id
      ON CONFLICT (pam_user_id) DO NOTHING
      RETURNING pam_user_id, folder_id, status
    ), counted AS (
      INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
      SELECT txid_current(), made.folder_id, made.status, NULL, COUNT(*) FROM made
      GROUP BY made.folder_id, made.status
    )
    SELECT COALESCE(array_agg(made.pam_user_id), '{{}}'), array_agg(made.folder_id)
    INTO made_ids, made_folders FROM made;
    IF cardinality(made_ids) > 0 THEN
      PERFORM rotation_counts_apply_at_commit();
      RETURN QUERY SELECT * FROM unnest(made_ids, made_folders);
    END IF;
    wanted := ARRAY(SELECT pu.id FROM vault_pamuser pu WHERE pu.id = ANY (wanted)
                  EXCEPT SELECT unnest(made_ids));
  END LOOP;
END $$;

-- Statement-level: every rotation a statement inserted (a bulk insert of a thousand is one
-- call): their records recomputed together, finished ones added to their chart slots.
CREATE OR REPLACE FUNCTION rotation_counts_on_rotation_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE rec_ids bigint[]; rec_folders bigint[];
BEGIN
  SELECT array_agg(r.record_id), array_agg(r.record_folder) INTO rec_ids, rec_folders
  FROM rotation_counts_recompute_many(ARRAY(SELECT n.pam_user_id FROM new_rows n)) AS r;
  INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
  SELECT txid_current(), rec.folder_id, n.status, rotation_counts_slot(n.finished_at), COUNT(*)
  FROM new_rows n JOIN unnest(rec_ids, rec_folders) AS rec (id, folder_id)
    ON rec.id = n.pam_user_id
  WHERE {_PG_FINISHED.format("n")}
  GROUP BY rec.folder_id, n.status, rotation_counts_slot(n.finished_at);
  IF FOUND THEN
    PERFORM rotation_counts_apply_at_commit();
  END IF;
  RETURN NULL;
END $$;

-- Statement-level: every rotation a statement updated, as it was (old_rows) and as it is
-- (new_rows), paired by id. Only rows whose status, created_at, finished_at or record changed
-- count (a lease renewal or an attempt's error changes none of them): their records, old and
-- new, recomputed together; each one's old state out of its chart slot, its new one in. The
-- claim's and the finish's UPDATE of a batch of twenty is one call, not twenty.
CREATE OR REPLACE FUNCTION rotation_counts_on_rotation_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE who bigint[]; rec_ids bigint[]; rec_folders bigint[];
BEGIN
  who := ARRAY(
    SELECT x.u FROM old_rows o JOIN new_rows n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES (o.pam_user_id), (n.pam_user_id)) AS x (u)
    WHERE {_PG_ROW_CHANGED});
  IF cardinality(who) = 0 THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(r.record_id), array_agg(r.record_folder) INTO rec_ids, rec_folders
  FROM rotation_counts_recompute_many(who) AS r;
  -- Each changed row twice: as it was (out of its slot) and as it is (into its slot).
  INSERT INTO rotation_count_delta (txid, folder_id, status, slot, n)
  SELECT txid_current(), rec.folder_id, x.status, rotation_counts_slot(x.finished_at), SUM(x.d)
  FROM old_rows o JOIN new_rows n ON n.id = o.id
  CROSS JOIN LATERAL (VALUES (o.pam_user_id, o.status, o.finished_at, -1),
                             (n.pam_user_id, n.status, n.finished_at, 1))
    AS x (u, status, finished_at, d)
  JOIN unnest(rec_ids, rec_folders) AS rec (id, folder_id) ON rec.id = x.u
  WHERE ({_PG_ROW_CHANGED}) AND {_PG_FINISHED.format("x")}
  GROUP BY rec.folder_id, x.status, rotation_counts_slot(x.finished_at)
  HAVING SUM(x.d) <> 0;
  IF FOUND THEN
    PERFORM rotation_counts_apply_at_commit();
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rotation_counts_on_pam_user_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM rotation_counts_recompute_many(ARRAY(SELECT n.id FROM new_rows n));
  RETURN NULL;
END $$;

-- Deferred to commit: this transaction's changes, summed per key, in one sorted pass.
CREATE OR REPLACE FUNCTION rotation_counts_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE d record; t bigint := txid_current(); gone bigint;
BEGIN
  PERFORM set_config('rotation_counts.marked', '', true);  -- later changes mark again
  FOR d IN
    SELECT c.folder_id, c.slot, c.status, SUM(c.n) AS n,
           EXISTS (SELECT 1 FROM vault_sharedfolder sf WHERE sf.id = c.folder_id) AS live
    FROM rotation_count_delta c WHERE c.txid = t AND c.folder_id <> 0
    GROUP BY c.folder_id, c.slot, c.status
    ORDER BY c.folder_id, c.slot NULLS FIRST, c.status
  LOOP
    IF NOT d.live THEN
      IF gone IS DISTINCT FROM d.folder_id THEN
        DELETE FROM rotation_status_count WHERE folder_id = d.folder_id;
        DELETE FROM rotation_slot_count WHERE folder_id = d.folder_id;
        gone := d.folder_id;
      END IF;
    ELSIF d.n = 0 THEN
      NULL;
    ELSIF d.slot IS NULL THEN
      INSERT INTO rotation_status_count AS c (folder_id, status, n)
      VALUES (d.folder_id, d.status, d.n)
      ON CONFLICT (folder_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
      INSERT INTO rotation_slot_count AS c (folder_id, slot, status, n)
      VALUES (d.folder_id, d.slot, d.status, d.n)
      ON CONFLICT (folder_id, slot, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
  END LOOP;
  DELETE FROM rotation_count_delta WHERE txid = t;
  RETURN NULL;
END $$;
"""
]

POSTGRES_TRIGGERS = [
    (
        "rotation_counts_rotation",
        "rotation_rotation",
        "AFTER DELETE ON rotation_rotation FOR EACH ROW "
        "EXECUTE FUNCTION rotation_counts_on_rotation()",
    ),
    (
        # Once per statement: the scheduler's and the batch request's bulk inserts of a
        # thousand rotations recompute their records in a few set-based statements.
        "rotation_counts_rotation_insert",
        "rotation_rotation",
        "AFTER INSERT ON rotation_rotation REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rotation_counts_on_rotation_insert()",
    ),
    (
        # Once per statement (a trigger with transition tables takes no column list, so it
        # fires for every UPDATE and looks for the rows that moved a count itself).
        "rotation_counts_rotation_update",
        "rotation_rotation",
        "AFTER UPDATE ON rotation_rotation "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rotation_counts_on_rotation_update()",
    ),
    (
        "rotation_counts_pam_user",
        "vault_pamuser",
        "AFTER DELETE ON vault_pamuser FOR EACH ROW EXECUTE FUNCTION rotation_counts_on_pam_user()",
    ),
    (
        "rotation_counts_pam_user_insert",
        "vault_pamuser",
        "AFTER INSERT ON vault_pamuser REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rotation_counts_on_pam_user_insert()",
    ),
    (
        "rotation_counts_pam_user_move",
        "vault_pamuser",
        "AFTER UPDATE OF folder_id ON vault_pamuser FOR EACH ROW "
        "WHEN (OLD.folder_id IS DISTINCT FROM NEW.folder_id) "
        "EXECUTE FUNCTION rotation_counts_on_pam_user()",
    ),
    (
        "rotation_counts_folder",
        "vault_sharedfolder",
        "AFTER DELETE ON vault_sharedfolder FOR EACH ROW "
        "EXECUTE FUNCTION rotation_counts_on_folder()",
    ),
    (
        "rotation_counts_apply",
        "rotation_count_delta",
        "AFTER INSERT ON rotation_count_delta DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "WHEN (NEW.folder_id = 0) EXECUTE FUNCTION rotation_counts_apply()",
    ),
]


def _postgres_install(cursor) -> None:
    for sql in POSTGRES_FUNCTIONS:
        cursor.execute(sql)
    for name, table, body in POSTGRES_TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        constraint = "CONSTRAINT " if name == "rotation_counts_apply" else ""
        cursor.execute(f"CREATE {constraint}TRIGGER {name} {body}")


def _postgres_installed(cursor) -> bool:
    cursor.execute(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'rotation_counts%%' "
        "AND tgenabled <> 'D'"
    )
    names = {row[0] for row in cursor.fetchall()}
    cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'rotation_counts_recompute' LIMIT 1")
    row = cursor.fetchone()
    return {name for name, _, _ in POSTGRES_TRIGGERS} <= names and bool(row and VERSION in row[0])


# --- what the pages read -------------------------------------------------------------------


def own_pending():
    """On PostgreSQL, this transaction's changes to the counts, not yet added to them: found
    by the transaction id through its index (never by scanning a table that every write
    inserts into and deletes from); none when the transaction has written nothing."""
    from django.db.models import BigIntegerField, Func

    from rotation.models import RotationCountDelta

    txid = Func(function="txid_current_if_assigned", output_field=BigIntegerField())
    return RotationCountDelta.objects.filter(txid=txid)


def with_pending(stored, pending=None, *more):
    """`stored` (a queryset of counts) UNION ALL `pending(own_pending())`, the same shape read
    from this transaction's changes not yet added, on PostgreSQL (on SQLite that table stays
    empty, and is not read), UNION ALL `more`."""
    if pending is not None and _is_postgres(stored.db):
        more = (pending(own_pending()), *more)
    return stored.union(*more, all=True) if more else stored


def _is_postgres(alias: str) -> bool:
    return connections[alias].vendor == "postgresql"


def record_count(folder_ref):
    """vault.counting.RECORD_COUNT: the records of a folder are the sum of its counts by
    status (plus this transaction's uncommitted changes on PostgreSQL)."""
    from django.db.models import BigIntegerField, Subquery, Sum, Value
    from django.db.models.functions import Coalesce

    from rotation.models import RotationStatusCount

    def total(rows):
        sums = (
            rows.filter(folder_id=folder_ref)
            .order_by()
            .values("folder_id")
            .annotate(total=Sum("n"))
            .values("total")
        )
        return Coalesce(Subquery(sums, output_field=BigIntegerField()), Value(0))

    if not _is_postgres("default"):
        return total(RotationStatusCount.objects)
    return total(RotationStatusCount.objects) + total(own_pending().filter(slot__isnull=True))


# --- install, rebuild, check ------------------------------------------------------------------


def _vendor(connection) -> str:
    if connection.vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"rotation counts: no triggers for {connection.vendor}")
    return connection.vendor


def install(connection) -> None:
    """Create (or replace) the triggers. Does not touch the counts: see rebuild()."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "sqlite":
            _sqlite_install(cursor)
        else:
            _postgres_install(cursor)


def uninstall(connection) -> None:
    """Drop the triggers (unapplying migration 0005)."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "sqlite":
            for kind, name, _ in reversed(SQLITE_OBJECTS):
                cursor.execute(f"DROP {kind.upper()} IF EXISTS {name}")
            return
        for name, table, _ in POSTGRES_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for function in (
            "rotation_counts_on_pam_user_insert()",
            "rotation_counts_on_rotation_insert()",
            "rotation_counts_recompute_many(bigint[])",
            "rotation_counts_apply()",
            "rotation_counts_on_folder()",
            "rotation_counts_on_pam_user()",
            "rotation_counts_on_rotation()",
            "rotation_counts_recompute(bigint)",
            "rotation_counts_add(bigint, varchar, bigint, bigint)",
            "rotation_counts_apply_at_commit()",
            "rotation_counts_slot(timestamptz)",
        ):
            cursor.execute(f"DROP FUNCTION IF EXISTS {function}")


def installed(connection) -> bool:
    """Every trigger is there, enabled, and of this VERSION."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "sqlite":
            return _sqlite_installed(cursor)
        return _postgres_installed(cursor)


def _slot_sql(connection, column: str) -> str:
    if connection.vendor == "sqlite":
        return _sqlite_slot(column)
    return f"rotation_counts_slot({column})"


def _expected_sql(connection) -> dict[str, str]:
    """The three tables as they should be, computed from the rows they derive from."""
    slot = _slot_sql(connection, "r.finished_at")
    records = (
        "SELECT pu.id AS pam_user_id, pu.folder_id AS folder_id, "
        "COALESCE(latest.status, '') AS status, latest.id AS rotation_id, "
        "latest.finished_at AS finished_at "
        "FROM vault_pamuser pu LEFT JOIN ("
        "  SELECT r.id, r.pam_user_id, r.status, r.finished_at, ROW_NUMBER() OVER ("
        "    PARTITION BY r.pam_user_id ORDER BY r.created_at DESC, r.id DESC) AS rn"
        "  FROM rotation_rotation r) AS latest"
        " ON latest.pam_user_id = pu.id AND latest.rn = 1"
    )
    return {
        "records": records,
        "status": (
            "SELECT e.folder_id, e.status, COUNT(*) AS n FROM ("
            + records
            + ") AS e GROUP BY e.folder_id, e.status"
        ),
        "slots": (
            f"SELECT pu.folder_id, {slot} AS slot, r.status, COUNT(*) AS n "
            "FROM rotation_rotation r JOIN vault_pamuser pu ON pu.id = r.pam_user_id "
            "WHERE r.status IN ('succeeded', 'failed') AND r.finished_at IS NOT NULL "
            f"GROUP BY pu.folder_id, {slot}, r.status"
        ),
    }


def _lock_sources(connection, cursor) -> None:
    """Keep writers of the source tables out until the transaction ends (PostgreSQL; SQLite's
    IMMEDIATE transactions already hold its one write lock)."""
    if connection.vendor == "postgresql":
        cursor.execute(
            "LOCK TABLE rotation_rotation, vault_pamuser, vault_sharedfolder IN SHARE MODE"
        )


def rebuild(using: str = "default") -> None:
    """Recompute the three tables from scratch, in one transaction that writers wait for."""
    connection = connections[using]
    expected = _expected_sql(connection)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        _lock_sources(connection, cursor)
        cursor.execute("DELETE FROM rotation_record_status")
        cursor.execute("DELETE FROM rotation_status_count")
        cursor.execute("DELETE FROM rotation_slot_count")
        if connection.vendor == "postgresql":
            cursor.execute("DELETE FROM rotation_count_delta")
        cursor.execute(
            "INSERT INTO rotation_record_status "
            "(pam_user_id, folder_id, status, rotation_id, finished_at) " + expected["records"]
        )
        cursor.execute(
            "INSERT INTO rotation_status_count (folder_id, status, n) "
            "SELECT folder_id, status, COUNT(*) FROM rotation_record_status "
            "GROUP BY folder_id, status"
        )
        cursor.execute(
            "INSERT INTO rotation_slot_count (folder_id, slot, status, n) " + expected["slots"]
        )


def ensure(using: str = "default") -> bool:
    """Install the triggers and rebuild the counts if a trigger is missing, disabled or
    outdated (after every migrate). Returns whether it had to."""
    connection = connections[using]
    if connection.vendor not in ("sqlite", "postgresql") or installed(connection):
        return False
    with transaction.atomic(using=using):
        install(connection)
        rebuild(using)
    return True


@dataclass
class Drift:
    table: str
    key: tuple
    stored: object
    expected: object


def check(using: str = "default", limit: int = 20) -> tuple[int, list[Drift]]:
    """Compare the counts with what the rows say. Returns (how many keys differ, the first
    `limit` of them). Read in one transaction that writers wait for."""
    connection = connections[using]
    expected = _expected_sql(connection)
    differences: list[Drift] = []
    total = 0
    with transaction.atomic(using=using), connection.cursor() as cursor:
        _lock_sources(connection, cursor)

        def compare(table: str, stored_sql: str, expected_sql: str, width: int) -> None:
            nonlocal total
            cursor.execute(stored_sql)
            stored = {tuple(row[:width]): row[width:] for row in cursor.fetchall()}
            cursor.execute(expected_sql)
            wanted = {tuple(row[:width]): row[width:] for row in cursor.fetchall()}
            for key in sorted(set(stored) | set(wanted), key=repr):
                have, want = stored.get(key), wanted.get(key)
                if table != "rotation_record_status":  # a count of 0 and no row are the same
                    have = have if have and have[0] else None
                    want = want if want and want[0] else None
                if have != want:
                    total += 1
                    if len(differences) < limit:
                        differences.append(Drift(table, key, have, want))

        pending = (
            " UNION ALL SELECT folder_id, status, slot, n FROM rotation_count_delta"
            if connection.vendor == "postgresql"
            else ""
        )
        compare(
            "rotation_status_count",
            "SELECT folder_id, status, SUM(n) FROM ("
            "SELECT folder_id, status, NULL AS slot, n FROM rotation_status_count"
            + pending
            + ") AS s WHERE slot IS NULL GROUP BY folder_id, status",
            expected["status"],
            2,
        )
        compare(
            "rotation_slot_count",
            "SELECT folder_id, slot, status, SUM(n) FROM ("
            "SELECT folder_id, status, slot, n FROM rotation_slot_count"
            + pending
            + ") AS s WHERE slot IS NOT NULL GROUP BY folder_id, slot, status",
            "SELECT folder_id, slot, status, n FROM (" + expected["slots"] + ") AS e",
            3,
        )
        compare(
            "rotation_record_status",
            "SELECT pam_user_id, folder_id, status, rotation_id, finished_at "
            "FROM rotation_record_status",
            expected["records"],
            1,
        )
    return total, differences
