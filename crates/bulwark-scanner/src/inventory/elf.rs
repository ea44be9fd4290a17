//! The little of ELF (32/64-bit, either byte order) that the executable
//! parsers ([`super::gobinary`], [`super::rustbinary`]) need: named
//! sections and reads by virtual address. Every offset and size comes from
//! the file and is checked; nothing here panics or allocates by a length
//! the file states.

pub(crate) fn read_uint(b: &[u8], at: usize, size: usize, big: bool) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(size)?)?;
    let mut v = 0u64;
    if big {
        for byte in bytes {
            v = (v << 8) | u64::from(*byte);
        }
    } else {
        for byte in bytes.iter().rev() {
            v = (v << 8) | u64::from(*byte);
        }
    }
    Some(v)
}

/// The little of an ELF file the executable parsers read.
pub(crate) struct Elf<'a> {
    data: &'a [u8],
    is64: bool,
    big: bool,
}

impl<'a> Elf<'a> {
    /// `Ok(None)` when `data` is not ELF.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Option<Self>, String> {
        if !data.starts_with(b"\x7fELF") {
            return Ok(None);
        }
        // An unknown class or byte order is not an ELF file this reads.
        let is64 = match data.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Ok(None),
        };
        let big = match data.get(5) {
            Some(1) => false,
            Some(2) => true,
            _ => return Ok(None),
        };
        Ok(Some(Elf { data, is64, big }))
    }

    fn uint(&self, at: usize, size: usize) -> Result<u64, String> {
        read_uint(self.data, at, size, self.big).ok_or_else(|| format!("ELF truncated at {at}"))
    }

    fn word(&self, at: usize) -> Result<u64, String> {
        self.uint(at, if self.is64 { 8 } else { 4 })
    }

    /// `base + off`, refusing overflow (both come from the file).
    fn at(base: usize, off: usize) -> Result<usize, String> {
        base.checked_add(off)
            .ok_or_else(|| "ELF offset overflows".to_owned())
    }

    fn usize(v: u64) -> Result<usize, String> {
        usize::try_from(v).map_err(|_| format!("ELF value {v} out of range"))
    }

    /// The file offset of the section named `name`, if any.
    pub(crate) fn section(&self, name: &[u8]) -> Result<Option<usize>, String> {
        Ok(self.section_range(name)?.map(|(offset, _)| offset))
    }

    /// `(sh_offset, sh_size)` of the section named `name`, as written
    /// (not checked against the file's length).
    pub(crate) fn section_range(&self, name: &[u8]) -> Result<Option<(usize, u64)>, String> {
        let (shoff, shentsize, shnum, shstrndx) = if self.is64 {
            (
                self.word(0x28)?,
                self.uint(0x3a, 2)?,
                self.uint(0x3c, 2)?,
                self.uint(0x3e, 2)?,
            )
        } else {
            (
                self.word(0x20)?,
                self.uint(0x2e, 2)?,
                self.uint(0x30, 2)?,
                self.uint(0x32, 2)?,
            )
        };
        if shoff == 0 || shnum == 0 {
            return Ok(None);
        }
        let (shoff, shentsize) = (Self::usize(shoff)?, Self::usize(shentsize)?);
        let min_entsize = if self.is64 { 64 } else { 40 };
        if shentsize < min_entsize {
            return Err(format!("section header size {shentsize}"));
        }
        let header = |i: u64| -> Result<usize, String> {
            Self::usize(i)?
                .checked_mul(shentsize)
                .and_then(|o| o.checked_add(shoff))
                .ok_or_else(|| "section header offset overflows".to_owned())
        };
        // sh_name (u32); sh_offset and sh_size at 0x18/0x20 (64-bit) or
        // 0x10/0x14 (32-bit).
        let (offset_field, size_field) = if self.is64 {
            (0x18, 0x20)
        } else {
            (0x10, 0x14)
        };
        let strtab = header(shstrndx)?;
        let strtab_off = Self::usize(self.word(Self::at(strtab, offset_field)?)?)?;
        for i in 0..shnum {
            let h = header(i)?;
            let name_off = Self::usize(self.uint(h, 4)?)?;
            let at = strtab_off
                .checked_add(name_off)
                .ok_or("section name offset overflows")?;
            let Some(rest) = self.data.get(at..) else {
                continue;
            };
            if rest.starts_with(name) && rest.get(name.len()) == Some(&0) {
                let offset = Self::usize(self.word(Self::at(h, offset_field)?)?)?;
                return Ok(Some((offset, self.word(Self::at(h, size_field)?)?)));
            }
        }
        Ok(None)
    }

    /// `size` bytes at virtual address `addr`, from the `PT_LOAD` segment
    /// holding them.
    pub(crate) fn read_at(&self, addr: u64, size: usize) -> Result<&'a [u8], String> {
        let (phoff, phentsize, phnum) = if self.is64 {
            (self.word(0x20)?, self.uint(0x36, 2)?, self.uint(0x38, 2)?)
        } else {
            (self.word(0x1c)?, self.uint(0x2a, 2)?, self.uint(0x2c, 2)?)
        };
        let (phoff, phentsize) = (Self::usize(phoff)?, Self::usize(phentsize)?);
        if phentsize < if self.is64 { 56 } else { 32 } {
            return Err(format!("program header size {phentsize}"));
        }
        for i in 0..Self::usize(phnum)? {
            let h = i
                .checked_mul(phentsize)
                .and_then(|o| o.checked_add(phoff))
                .ok_or("program header offset overflows")?;
            if self.uint(h, 4)? != 1 {
                continue; // not PT_LOAD
            }
            let (offset, vaddr, filesz) = if self.is64 {
                (
                    self.word(Self::at(h, 8)?)?,
                    self.word(Self::at(h, 16)?)?,
                    self.word(Self::at(h, 32)?)?,
                )
            } else {
                (
                    self.word(Self::at(h, 4)?)?,
                    self.word(Self::at(h, 8)?)?,
                    self.word(Self::at(h, 16)?)?,
                )
            };
            let Some(delta) = addr.checked_sub(vaddr) else {
                continue;
            };
            if delta >= filesz {
                continue;
            }
            let avail = filesz - delta;
            if (size as u64) > avail {
                return Err(format!("{size} bytes at {addr:#x} run past their segment"));
            }
            let start = Self::usize(offset.checked_add(delta).ok_or("offset overflows")?)?;
            return start
                .checked_add(size)
                .and_then(|end| self.data.get(start..end))
                .ok_or_else(|| format!("{size} bytes at {addr:#x} outside the file"));
        }
        Err(format!("address {addr:#x} is in no loaded segment"))
    }

    /// The bytes of the Go string whose header `{data, len}` is at `addr`.
    pub(crate) fn go_string(
        &self,
        addr: u64,
        ptr: usize,
        big: bool,
        max: usize,
    ) -> Result<&'a [u8], String> {
        let header = self.read_at(addr, 2 * ptr)?;
        let data = read_uint(header, 0, ptr, big).ok_or("string header truncated")?;
        let len = read_uint(header, ptr, ptr, big).ok_or("string header truncated")?;
        let len = usize::try_from(len).map_err(|_| "string length overflows")?;
        if len > max {
            return Err(format!("{len}-byte build-info string exceeds {max}"));
        }
        self.read_at(data, len)
    }
}
