"""Writes nested and mixed archives for the container tests into argv[1].

EICAR and a marker that the test's .ndb signature matches are planted at
several depths; clean archives sit beside them. Every file is made with
Python's standard library, independently of the Rust readers under test.
"""
import bz2, gzip, io, lzma, os, struct, sys, tarfile, zipfile

out = sys.argv[1]
EICAR = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
MARK = b'padding AETHER-CONTAINER-MARK-0042 padding\n'
HDB_MEMBER = b'this member is known by its md5 only\n' * 3


def z(members, comp=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', comp) as f:
        for n, d in members:
            f.writestr(n, d)
    return b.getvalue()


def tar(members, mode='w'):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode, format=tarfile.GNU_FORMAT) as t:
        for n, d in members:
            i = tarfile.TarInfo(n)
            i.size = len(d)
            t.addfile(i, io.BytesIO(d))
    return b.getvalue()


def pax(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT) as t:
        for n, d in members:
            i = tarfile.TarInfo(n)
            i.size = len(d)
            t.addfile(i, io.BytesIO(d))
    return b.getvalue()


def newc(members, magic=b'070701'):
    o = b''
    for ino, (n, d) in enumerate(members + [('TRAILER!!!', b'')], 1):
        name = n.encode() + b'\0'
        mode = 0o100644 if d or n != 'TRAILER!!!' else 0
        fields = [ino, mode, 0, 0, 1, 0, len(d), 0, 0, 0, 0, len(name), 0]
        h = magic + b''.join(b'%08X' % v for v in fields)
        o += h + name
        o += b'\0' * (-len(o) % 4)
        o += d
        o += b'\0' * (-len(o) % 4)
    return o


def odc(members):
    o = b''
    for ino, (n, d) in enumerate(members + [('TRAILER!!!', b'')], 1):
        name = n.encode() + b'\0'
        mode = 0o100644 if n != 'TRAILER!!!' else 0
        o += b'070707' + b'%06o' % 0 + b'%06o' % ino + b'%06o' % mode + b'%06o' % 0 * 2
        o += b'%06o' % 1 + b'%06o' % 0 + b'%011o' % 0 + b'%06o' % len(name) + b'%011o' % len(d)
        o += name + d
    return o


def ar(members):
    o = b'!<arch>\n'
    for n, d in members:
        o += b'%-16s%-12d%-6d%-6d%-8o%-10d`\n' % ((n + '/').encode(), 0, 0, 0, 0o644, len(d))
        o += d
        if len(d) % 2:
            o += b'\n'
    return o


def w(name, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)


clean = b'nothing to see here\n' * 50
inner = z([('dir/evil.com', EICAR)])
w('nested.zip', z([('a.txt', clean), ('mid.tar.gz', tar([('inner.zip', inner)], 'w:gz'))]))
w('nested_clean.zip', z([('a.txt', clean), ('mid.tar.gz', tar([('inner.zip', z([('x', clean)]))], 'w:gz'))]))
w('eicar.zip', z([('evil', EICAR)]))
w('eicar_bzip2.zip', z([('evil', EICAR)], zipfile.ZIP_BZIP2))
w('eicar_lzma.zip', z([('evil', EICAR)], zipfile.ZIP_LZMA))
w('eicar.gz', gzip.compress(EICAR))
w('eicar.bz2', bz2.compress(EICAR))
w('eicar.xz', lzma.compress(EICAR))
w('eicar.tar', tar([('clean.txt', clean), ('evil', EICAR)]))
w('eicar_pax.tar', pax([('d/' + 'x' * 150 + '/evil', EICAR)]))
w('eicar.tar.bz2', tar([('evil', EICAR)], 'w:bz2'))
w('eicar.tar.xz', tar([('evil', EICAR)], 'w:xz'))
w('eicar_in_zip.tar.gz', tar([('e.zip', z([('evil', EICAR)]))], 'w:gz'))
w('eicar_gz.newc.cpio', newc([('clean', clean), ('evil.gz', gzip.compress(EICAR))]))
w('eicar_gz.crc.cpio', newc([('evil.gz', gzip.compress(EICAR))], b'070702'))
w('eicar_gz.odc.cpio', odc([('evil.gz', gzip.compress(EICAR))]))
w('mark.zip', z([('one', clean), ('two.xz', lzma.compress(MARK))]))
w('mark_deep.tar.gz', tar([('l1.zip', z([('l2.tar', tar([('l3.bz2', bz2.compress(MARK))]))]))], 'w:gz'))
w('hdb_member.zip', z([('known', HDB_MEMBER)]))
w('hdb_member.tar.xz', tar([('known', HDB_MEMBER)], 'w:xz'))
w('both.zip', z([('evil', EICAR), ('mark.gz', gzip.compress(MARK)), ('known', HDB_MEMBER)]))
w('clean.zip', z([('a', clean), ('b', clean[:100])]))
w('clean.tar.gz', tar([('a', clean)], 'w:gz'))
w('clean.cpio', newc([('a', clean)]))
w('many.zip', z([('f%d' % i, b'clean %d' % i) for i in range(10)] + [('evil', EICAR)]))
w('big_first.zip', z([('zeros', b'\0' * 3000000), ('evil', EICAR)]))
w('big_last.zip', z([('evil', EICAR), ('zeros', b'\0' * 3000000)]))
w('eicar_then_zeros.gz', gzip.compress(EICAR + b'\0' * 3000000))
w('traversal.zip', z([('../../etc/evil', EICAR)]))
# ar members are stored, so EICAR inside is found raw by both scanners; a
# compressed member inside an ar is aether's extra (ClamAV has no ar reader).
w('plain.ar', ar([('debian-binary', b'2.0\n'), ('evil', EICAR)]))
w('data.deb', ar([('debian-binary', b'2.0\n'), ('data.tar.xz', tar([('./usr/bin/evil', EICAR)], 'w:xz'))]))

# Larger than the engine's threshold for scanning members on several threads
# (8 MiB): incompressible members, with EICAR at a few places and depths.
rnd = __import__('random').Random(42)
members = []
for i in range(40):
    blob = bytes(rnd.getrandbits(8) for _ in range(256 * 1024))
    if i == 5:
        members.append(('m05.gz', gzip.compress(EICAR + blob)))
    elif i == 17:
        members.append(('m17.zip', z([('x', blob), ('deep/evil', EICAR)])))
    elif i == 33:
        members.append(('m33.bin', blob + MARK))
    else:
        members.append(('m%02d.bin' % i, blob))
w('large.zip', z(members, zipfile.ZIP_STORED))
w('large.tar.gz', tar(members, 'w:gz'))
