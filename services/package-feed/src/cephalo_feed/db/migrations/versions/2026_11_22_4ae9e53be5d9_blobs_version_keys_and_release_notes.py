"""blobs, version keys and release notes

Existing rows are kept: each distinct SHA-256 becomes a blob row (with the storage key its
package had), versions get their semantic key (`1.0` -> `1.0.0`), and extensions are
taken from the storage key.

Revision ID: 4ae9e53be5d9
Revises: 1b462ec7d653
Create Date: 2026-11-22 00:08:42.954105
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cephalo_common.packages import normalize_version
from cephalo_common.packages.filenames import split_extension

revision: str = '4ae9e53be5d9'
down_revision: str | None = '1b462ec7d653'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _version_key(version: str) -> str:
    try:
        return normalize_version(version)
    except ValueError:
        return version.lower()


def _extension(storage_key: str) -> str:
    try:
        return split_extension(storage_key)[1]
    except ValueError:
        return ''


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(
        "INSERT INTO feed.blobs (id, sha256, size_bytes, storage_key) "
        "SELECT DISTINCT ON (sha256) gen_random_uuid(), sha256, size_bytes, storage_key "
        "FROM feed.packages ORDER BY sha256, created_at"
    ))
    rows = bind.execute(sa.text(
        "SELECT id, space_id, package_id_key, version, storage_key FROM feed.packages "
        "ORDER BY published_at"
    )).all()
    seen: set[tuple[object, str, str]] = set()
    for row in rows:
        key = _version_key(row.version)
        if (row.space_id, row.package_id_key, key) in seen:
            key = row.version.lower()
        seen.add((row.space_id, row.package_id_key, key))
        bind.execute(
            sa.text("UPDATE feed.packages SET version_key = :key, extension = :ext WHERE id = :id"),
            {"key": key, "ext": _extension(row.storage_key), "id": row.id},
        )


def upgrade() -> None:
    op.create_table('blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('storage_key', sa.String(length=500), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blobs')),
    sa.UniqueConstraint('sha256', name=op.f('uq_blobs__sha256')),
    schema='feed'
    )
    op.add_column('packages', sa.Column('version_key', sa.String(length=100), nullable=True), schema='feed')
    op.add_column('packages', sa.Column('extension', sa.String(length=20), server_default=sa.text("''"), nullable=False), schema='feed')
    op.add_column('packages', sa.Column('release_notes', sa.Text(), server_default=sa.text("''"), nullable=False), schema='feed')
    _backfill()
    op.alter_column('packages', 'version_key', nullable=False, schema='feed')
    op.drop_constraint(op.f('uq_packages__space_id_package_id_key_version'), 'packages', schema='feed', type_='unique')
    op.create_index(op.f('ix_packages__sha256'), 'packages', ['sha256'], unique=False, schema='feed')
    op.create_unique_constraint(op.f('uq_packages__space_id_package_id_key_version_key'), 'packages', ['space_id', 'package_id_key', 'version_key'], schema='feed')
    op.create_foreign_key(op.f('fk_packages__sha256__blobs'), 'packages', 'blobs', ['sha256'], ['sha256'], source_schema='feed', referent_schema='feed', ondelete='RESTRICT')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_packages__sha256__blobs'), 'packages', schema='feed', type_='foreignkey')
    op.drop_constraint(op.f('uq_packages__space_id_package_id_key_version_key'), 'packages', schema='feed', type_='unique')
    op.drop_index(op.f('ix_packages__sha256'), table_name='packages', schema='feed')
    op.create_unique_constraint(op.f('uq_packages__space_id_package_id_key_version'), 'packages', ['space_id', 'package_id_key', 'version'], schema='feed')
    op.drop_column('packages', 'release_notes', schema='feed')
    op.drop_column('packages', 'extension', schema='feed')
    op.drop_column('packages', 'version_key', schema='feed')
    op.drop_table('blobs', schema='feed')
