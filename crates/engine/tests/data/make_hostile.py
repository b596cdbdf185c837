"""Writes hostile archives for the engine's hostile-input tests into argv[1].

Made with Python's standard library plus hand-built zip records where the
library refuses to write something broken on purpose.
"""
import io, os, struct, sys, zipfile, zlib

out = sys.argv[1]
EICAR = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'


def w(name, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)


def z(members, comp=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', comp) as f:
        for n, d in members:
            f.writestr(n, d)
    return b.getvalue()


def local(name, flags, method, crc, csize, usize):
    n = name.encode()
    return struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, flags, method, 0, 0, crc, csize, usize, len(n), 0) + n


def central(name, flags, method, crc, csize, usize, offset):
    n = name.encode()
    return struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, flags, method, 0, 0, crc, csize,
                       usize, len(n), 0, 0, 0, 0, 0, offset) + n


def eocd(count, cd_size, cd_off):
    return struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, count, count, cd_size, cd_off, 0)


# 42.zip in miniature: 16 copies per level of a level below, 1 MiB of zeros
# at the bottom: 16**4 MiB = 64 GiB unpacked from a few kilobytes.
level = z([('zeros.bin', b'\0' * (1 << 20))])
for depth in range(4):
    level = z([('%d_%02d.zip' % (depth, i), level) for i in range(16)])
w('bomb42.zip', level)

# Overlapping entries (the non-recursive zip bomb): 20 local headers back to
# back, each entry's data claiming everything after its own header.
names = ['f%02d' % i for i in range(20)]
body = zlib.compress(b'\0' * (1 << 20))[2:-4]
heads, offs = [], []
pos = 0
for n in names:
    h = local(n, 0, 8, 0, 0, 0)
    offs.append(pos)
    heads.append(h)
    pos += len(h)
total = pos + len(body)
blob = b''
for n, off in zip(names, offs):
    csize = total - off - 30 - len(n)
    blob += local(n, 0, 8, 0, csize, 1 << 20)
blob += body
cd = b''.join(central(n, 0, 8, 0, total - off - 30 - len(n), 1 << 20, off) for n, off in zip(names, offs))
w('overlap.zip', blob + cd + eocd(len(names), len(cd), len(blob)))

# An encrypted member (traditional PKWARE encryption: flag bit 0) and a
# clean one beside it.
enc_data = os.urandom(12) + b'not really encrypted but flagged so'
crc = zlib.crc32(b'x') & 0xffffffff
l1 = local('secret.txt', 1, 0, crc, len(enc_data), len(enc_data) - 12)
l2 = local('plain.txt', 0, 0, zlib.crc32(EICAR) & 0xffffffff, len(EICAR), len(EICAR))
blob = l1 + enc_data + l2 + EICAR
cd = central('secret.txt', 1, 0, crc, len(enc_data), len(enc_data) - 12, 0) + \
    central('plain.txt', 0, 0, zlib.crc32(EICAR) & 0xffffffff, len(EICAR), len(EICAR), len(l1) + len(enc_data))
w('encrypted.zip', blob + cd + eocd(2, len(cd), len(blob)))
w('encrypted_only.zip', (l1 + enc_data) + central('secret.txt', 1, 0, crc, len(enc_data), len(enc_data) - 12, 0)
  + eocd(1, 46 + 10, len(l1) + len(enc_data)))

# Lying sizes: the headers say 100 bytes, the deflate stream holds 3 MB of
# zeros and then EICAR.
data = b'\0' * 3000000 + EICAR
comp = zlib.compress(data)[2:-4]
crc = zlib.crc32(data) & 0xffffffff
l = local('liar.bin', 0, 8, crc, len(comp), 100)
cd = central('liar.bin', 0, 8, crc, len(comp), 100, 0)
w('lying.zip', l + comp + cd + eocd(1, len(cd), len(l) + len(comp)))

# 1,000 levels of zip in zip, EICAR at the bottom.
level = EICAR
for i in range(1000):
    level = z([('l%d' % i, level)], zipfile.ZIP_STORED if i % 2 else zipfile.ZIP_DEFLATED)
w('deep1000.zip', level)

# 100,000 tiny members, EICAR last.
b = io.BytesIO()
with zipfile.ZipFile(b, 'w', zipfile.ZIP_STORED) as f:
    for i in range(100000):
        f.writestr('m%06d' % i, b'%d' % i)
    f.writestr('evil', EICAR)
w('many100k.zip', b.getvalue())
