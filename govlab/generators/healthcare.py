"""Synthetic patient admissions: PII-heavy rows with free-text clinical notes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from govlab import catalog

from . import _common as c

N_CLINICIANS = 50
_CLINICIANS_PER_REGION = N_CLINICIANS // 5

SCHEMA = catalog.HEALTHCARE.schema

CLINICIAN_IDS = np.array([f"C{i:03d}" for i in range(1, N_CLINICIANS + 1)])
_CLINICIANS_PA = c.vocab(CLINICIAN_IDS)
# Note text for every (visit, finding) pair: code = visit * n_findings + finding.
_NOTES_PA = c.vocab(
    [f"{visit}: {finding}" for visit in c.NOTE_VISITS for finding in c.NOTE_FINDINGS]
)
_NULL_NOTE = pa.scalar(None, pa.string())


@c.full_chunks
def build_chunk(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    rng = c.salted(rng, "healthcare")
    name, _ = c.names(rng, n)
    ssn = c.ssns(rng, n)
    dob = c.dates(rng, n, "1930-01-01", "2010-12-31")
    address, city = c.addresses(rng, n)
    region_codes = c.CITY_REGION[city]
    condition = c.weighted_codes(rng, c.CONDITION_WEIGHTS, n)
    # Clinicians work in one region each (C001-C010 in the first region, ...), so a
    # clinician's patients all share that clinician's region.
    clinician = region_codes * _CLINICIANS_PER_REGION + rng.integers(0, _CLINICIANS_PER_REGION, n)
    admitted_at = c.timestamps(rng, n, "2021-01-01", "2025-12-31")
    visit = rng.integers(0, len(c.NOTE_VISITS), n)
    no_note = rng.random(n) < 0.01  # ~1% of admissions have no notes
    insurance_id = c.with_nulls(rng, c.coded_ids(rng, n, c.INSURERS, 9), 0.02)
    # Drawn last, so every other column keeps the values it had when notes quoted the
    # row's condition (handing roles that mask notes but see `condition` part of them).
    finding = rng.integers(0, len(c.NOTE_FINDINGS), n)
    notes = c.take(_NOTES_PA, visit * len(c.NOTE_FINDINGS) + finding)
    notes = pc.if_else(pa.array(no_note), _NULL_NOTE, notes) if no_note.any() else notes
    return pa.RecordBatch.from_arrays(
        [
            c.primary_keys(start, n),
            name,
            ssn,
            dob,
            address,
            c.take(c.REGIONS_PA, region_codes),
            c.take(c.CONDITIONS_PA, condition),
            c.take(_CLINICIANS_PA, clinician),
            admitted_at,
            notes,
            insurance_id,
        ],
        schema=SCHEMA,
    )
