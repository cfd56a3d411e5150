//! Size limits of the libvirt RPC protocol, as named fields with per-era profiles.
//!
//! Every limit the decoder enforces lives here, checked *before* anything is allocated.
//! The values come from libvirt's `src/rpc/virnetprotocol.x` (and, for 2007, the original
//! `qemud/remote_protocol.x`). Per-field bounds of individual procedures (`string<N>`, `T x<N>`)
//! come from the `.x` files themselves and are enforced by the schema codec; [`Limits::string_max`]
//! is the bound of the protocol-level strings (the error body).

use std::fmt;

/// Size of the length word that starts every frame (`VIR_NET_MESSAGE_LEN_MAX`,
/// `VIR_NET_MESSAGE_HEADER_XDR_LEN`). The length word counts itself.
pub const LEN_WORD: usize = 4;
/// Size of the fixed header (`VIR_NET_MESSAGE_HEADER_MAX`): six 4-byte words.
pub const HEADER_LEN: usize = 24;
/// Smallest frame that holds a header: length word + header, empty payload.
pub const MIN_FRAME: usize = LEN_WORD + HEADER_LEN;
/// Size of the FD count that follows the header of `CALL_WITH_FDS` / `REPLY_WITH_FDS`.
pub const FD_COUNT_LEN: usize = 4;

/// The libvirt era a set of limits belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// 2007–2011: `REMOTE_MESSAGE_MAX = 262144`, `REMOTE_STRING_MAX = 65536`, fixed buffers.
    Legacy256K,
    /// ≈2012–2016: dynamic buffers, `VIR_NET_MESSAGE_MAX = 16777216`, string max 4 MiB.
    Dynamic16M,
    /// 2017 onwards (libvirt ≥ 3.4): `VIR_NET_MESSAGE_MAX = 33554432`. The current protocol.
    Current32M,
    /// Built by the user with a [`LimitsBuilder`].
    Custom,
}

impl Profile {
    /// All named profiles, oldest first (not [`Profile::Custom`]).
    pub const NAMED: [Profile; 3] = [
        Profile::Legacy256K,
        Profile::Dynamic16M,
        Profile::Current32M,
    ];

    /// A short stable name (`legacy-256k`, `dynamic-16m`, `current-32m`, `custom`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Legacy256K => "legacy-256k",
            Profile::Dynamic16M => "dynamic-16m",
            Profile::Current32M => "current-32m",
            Profile::Custom => "custom",
        }
    }

    /// The profile with this [`name`](Profile::name).
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::NAMED.into_iter().find(|p| p.name() == name)
    }

    /// The limits of this era. [`Profile::Custom`] gives the current limits.
    pub fn limits(self) -> Limits {
        match self {
            Profile::Legacy256K => Limits::LEGACY_256K,
            Profile::Dynamic16M => Limits::DYNAMIC_16M,
            Profile::Current32M | Profile::Custom => Limits::CURRENT_32M,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every size limit the protocol layer enforces.
///
/// Always coherent: the named profiles ([`Limits::CURRENT_32M`], [`Limits::default`], …) are
/// constants, and custom limits are built with a [`LimitsBuilder`] whose [`build`](LimitsBuilder::build)
/// refuses incoherent values ([`InvalidLimits`]). All sizes are in bytes unless the getter says
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    profile: Profile,
    message_max: u32,
    stream_chunk: u32,
    string_max: u32,
    fds_max: u32,
    initial_buffer: u32,
    nesting_max: u32,
    stream_buffer_max: u64,
    streams_max: u32,
}

impl Limits {
    /// 2007–2011: 256 KiB messages (`REMOTE_MESSAGE_MAX = 262144`), 64 KiB strings.
    pub const LEGACY_256K: Limits = Limits {
        profile: Profile::Legacy256K,
        message_max: 262_144,
        stream_chunk: 262_120,
        string_max: 65_536,
        fds_max: 32,
        initial_buffer: 262_144,
        nesting_max: 64,
        stream_buffer_max: 32 << 20,
        streams_max: 64,
    };

    /// ≈2012–2016: 16 MiB messages, 4 MiB strings, 64 KiB initial buffer.
    pub const DYNAMIC_16M: Limits = Limits {
        profile: Profile::Dynamic16M,
        message_max: 16_777_216,
        stream_chunk: 262_120,
        string_max: 4_194_304,
        fds_max: 32,
        initial_buffer: 65_536,
        nesting_max: 64,
        stream_buffer_max: 32 << 20,
        streams_max: 64,
    };

    /// 2017 onwards: 32 MiB messages (`VIR_NET_MESSAGE_MAX = 33554432`). What libvirt uses today.
    pub const CURRENT_32M: Limits = Limits {
        profile: Profile::Current32M,
        message_max: 33_554_432,
        stream_chunk: 262_120,
        string_max: 4_194_304,
        fds_max: 32,
        initial_buffer: 65_536,
        nesting_max: 64,
        stream_buffer_max: 32 << 20,
        streams_max: 64,
    };

    /// Custom limits, starting from the current ones ([`Limits::CURRENT_32M`]).
    pub const fn builder() -> LimitsBuilder {
        Limits::CURRENT_32M.to_builder()
    }

    /// Custom limits, starting from these.
    pub const fn to_builder(self) -> LimitsBuilder {
        LimitsBuilder { limits: self }
    }

    /// Which era these limits describe ([`Profile::Custom`] once a builder changed them).
    pub const fn profile(&self) -> Profile {
        self.profile
    }

    /// Largest header + payload, **excluding** the 4-byte length word (`VIR_NET_MESSAGE_MAX`).
    /// The largest legal length word is `message_max + 4` ([`Limits::frame_max`]).
    pub const fn message_max(&self) -> u32 {
        self.message_max
    }

    /// Payload size libvirt used before dynamic buffers (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX` =
    /// 262120), still the chunk size libvirt uses for stream data in both directions.
    pub const fn stream_chunk(&self) -> u32 {
        self.stream_chunk
    }

    /// Largest protocol-level string: the strings inside the error body
    /// (`VIR_NET_MESSAGE_STRING_MAX`; `REMOTE_STRING_MAX` = 65536 in 2007).
    pub const fn string_max(&self) -> u32 {
        self.string_max
    }

    /// Largest FD count of `CALL_WITH_FDS` / `REPLY_WITH_FDS` (`VIR_NET_MESSAGE_NUM_FDS_MAX`).
    pub const fn fds_max(&self) -> u32 {
        self.fds_max
    }

    /// Initial size of libvirt's encode buffer (`VIR_NET_MESSAGE_INITIAL`); informational, used by
    /// benchmarks and the encoder's first reservation.
    pub const fn initial_buffer(&self) -> u32 {
        self.initial_buffer
    }

    /// Deepest nesting of structs, unions, optionals and arrays the schema codec follows. libvirt's
    /// types are shallow (< 10); the bound protects against recursive user schemas.
    pub const fn nesting_max(&self) -> u32 {
        self.nesting_max
    }

    /// Most bytes of stream data a reassembler buffers before refusing more (not a libvirt constant:
    /// libvirt bounds a stream's queue by flow control; this is ours, default 32 MiB).
    pub const fn stream_buffer_max(&self) -> u64 {
        self.stream_buffer_max
    }

    /// Most streams a reassembler tracks at once on one connection (ours; libvirt has no fixed cap,
    /// each stream costs a client request slot, `max_client_requests` defaults to 5). At least 1.
    pub const fn streams_max(&self) -> u32 {
        self.streams_max
    }

    /// Largest payload: `message_max - 24` (`VIR_NET_MESSAGE_PAYLOAD_MAX`). For `*_WITH_FDS` frames the
    /// FD count takes 4 of these bytes.
    pub const fn payload_max(&self) -> u32 {
        self.message_max.saturating_sub(HEADER_LEN as u32)
    }

    /// Largest legal length word: `message_max + 4` (the length word counts itself).
    pub const fn frame_max(&self) -> u64 {
        self.message_max as u64 + LEN_WORD as u64
    }

    /// Which rule these values break, if any: a header fits in a message, the length word cannot
    /// overflow, a stream chunk fits in a payload, at least one stream may be open.
    const fn check(&self) -> Result<(), InvalidLimits> {
        if (self.message_max as usize) < HEADER_LEN {
            return Err(InvalidLimits(
                "message_max is smaller than the 24-byte header",
            ));
        }
        if self.message_max > u32::MAX - LEN_WORD as u32 {
            return Err(InvalidLimits(
                "message_max + 4 does not fit the 32-bit length word",
            ));
        }
        if self.stream_chunk == 0 || self.stream_chunk > self.payload_max() {
            return Err(InvalidLimits(
                "stream_chunk must be between 1 and payload_max",
            ));
        }
        if self.streams_max == 0 {
            return Err(InvalidLimits("streams_max must be at least 1"));
        }
        Ok(())
    }
}

impl Default for Limits {
    /// The limits of current libvirt ([`Limits::CURRENT_32M`]).
    fn default() -> Self {
        Limits::CURRENT_32M
    }
}

/// Custom [`Limits`]: set any field, then [`build`](LimitsBuilder::build), which checks that the
/// whole is coherent. The setters can be called in any order; only the result is checked.
///
/// ```
/// use virtwire_protocol::Limits;
/// let small = Limits::builder().message_max(24 + 1000).stream_chunk(1000).build()?;
/// assert_eq!(small.payload_max(), 1000);
/// // The current 262120-byte stream chunk does not fit a 1000-byte payload.
/// assert!(Limits::builder().message_max(24 + 1000).build().is_err());
/// # Ok::<(), virtwire_protocol::limits::InvalidLimits>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub struct LimitsBuilder {
    limits: Limits,
}

impl LimitsBuilder {
    /// Set [`Limits::message_max`]: at least 24, at most `u32::MAX - 4`.
    pub const fn message_max(mut self, v: u32) -> Self {
        self.limits.message_max = v;
        self.custom()
    }
    /// Set [`Limits::stream_chunk`]: at least 1, at most the payload size.
    pub const fn stream_chunk(mut self, v: u32) -> Self {
        self.limits.stream_chunk = v;
        self.custom()
    }
    /// Set [`Limits::string_max`].
    pub const fn string_max(mut self, v: u32) -> Self {
        self.limits.string_max = v;
        self.custom()
    }
    /// Set [`Limits::fds_max`].
    pub const fn fds_max(mut self, v: u32) -> Self {
        self.limits.fds_max = v;
        self.custom()
    }
    /// Set [`Limits::initial_buffer`].
    pub const fn initial_buffer(mut self, v: u32) -> Self {
        self.limits.initial_buffer = v;
        self.custom()
    }
    /// Set [`Limits::nesting_max`].
    pub const fn nesting_max(mut self, v: u32) -> Self {
        self.limits.nesting_max = v;
        self.custom()
    }
    /// Set [`Limits::stream_buffer_max`].
    pub const fn stream_buffer_max(mut self, v: u64) -> Self {
        self.limits.stream_buffer_max = v;
        self.custom()
    }
    /// Set [`Limits::streams_max`]: at least 1.
    pub const fn streams_max(mut self, v: u32) -> Self {
        self.limits.streams_max = v;
        self.custom()
    }

    const fn custom(mut self) -> Self {
        self.limits.profile = Profile::Custom;
        self
    }

    /// The limits, if they are coherent: a header fits in a message, the length word cannot overflow,
    /// a stream chunk fits in a payload, at least one stream may be open. A `const fn`, so custom
    /// limits can be constants (`match … { Ok(l) => l, Err(_) => panic!(…) }`).
    pub const fn build(self) -> Result<Limits, InvalidLimits> {
        match self.limits.check() {
            Ok(()) => Ok(self.limits),
            Err(e) => Err(e),
        }
    }
}

impl From<Limits> for LimitsBuilder {
    fn from(l: Limits) -> Self {
        l.to_builder()
    }
}

/// Returned by [`LimitsBuilder::build`]: which rule the limits break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid limits: {0}")]
pub struct InvalidLimits(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_matches_virnetprotocol_x() {
        let l = Limits::default();
        assert_eq!(l.message_max(), 33_554_432);
        assert_eq!(l.payload_max(), 33_554_408);
        assert_eq!(l.frame_max(), 33_554_436);
        assert_eq!(l.stream_chunk(), 262_120);
        assert_eq!(l.string_max(), 4_194_304);
        assert_eq!(l.fds_max(), 32);
        assert_eq!(Limits::DYNAMIC_16M.payload_max(), 16_777_192);
        assert_eq!(Limits::LEGACY_256K.payload_max(), 262_120);
    }

    #[test]
    fn profiles_validate_and_have_names() {
        for p in Profile::NAMED {
            assert_eq!(p.limits().to_builder().build(), Ok(p.limits()));
            p.limits().check().unwrap();
            assert_eq!(Profile::from_name(p.name()), Some(p));
            assert_eq!(p.limits().profile(), p);
        }
    }

    #[test]
    fn custom_limits_are_checked() {
        let b = Limits::builder().message_max(23);
        assert_eq!(b.limits.profile, Profile::Custom);
        assert!(b.build().is_err());
        assert!(Limits::builder().message_max(u32::MAX).build().is_err());
        assert!(Limits::builder().message_max(u32::MAX - 4).build().is_ok());
        assert!(Limits::builder().message_max(1000).build().is_err()); // chunk > payload
        let l = Limits::builder()
            .message_max(1000)
            .stream_chunk(976)
            .build()
            .unwrap();
        assert_eq!(l.profile(), Profile::Custom);
        // Order does not matter: only the result is checked.
        assert_eq!(
            Limits::builder()
                .stream_chunk(976)
                .message_max(1000)
                .build(),
            Ok(l)
        );
        assert!(Limits::builder().stream_chunk(0).build().is_err());
        assert!(Limits::builder().streams_max(0).build().is_err());
        const SMALL: Limits = match Limits::builder().string_max(64).build() {
            Ok(l) => l,
            Err(_) => panic!("valid"),
        };
        assert_eq!(SMALL.string_max(), 64);
    }
}
