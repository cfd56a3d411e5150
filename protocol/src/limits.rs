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
    /// Built by the user with the `with_*` methods.
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
/// Build one from a named profile ([`Limits::CURRENT_32M`], [`Limits::default`], …) and adjust it with
/// the `with_*` methods. All sizes are in bytes unless the field says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Which era these limits describe ([`Profile::Custom`] once a `with_*` method changed them).
    pub profile: Profile,
    /// Largest header + payload, **excluding** the 4-byte length word (`VIR_NET_MESSAGE_MAX`).
    /// The largest legal length word is `message_max + 4`.
    pub message_max: u32,
    /// Payload size libvirt used before dynamic buffers (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX` = 262120),
    /// still the chunk size libvirt uses for stream data in both directions.
    pub stream_chunk: u32,
    /// Largest protocol-level string: the strings inside the error body
    /// (`VIR_NET_MESSAGE_STRING_MAX`; `REMOTE_STRING_MAX` = 65536 in 2007).
    pub string_max: u32,
    /// Largest FD count of `CALL_WITH_FDS` / `REPLY_WITH_FDS` (`VIR_NET_MESSAGE_NUM_FDS_MAX`).
    pub fds_max: u32,
    /// Initial size of libvirt's encode buffer (`VIR_NET_MESSAGE_INITIAL`); informational, used by
    /// benchmarks and the encoder's first reservation.
    pub initial_buffer: u32,
    /// Deepest nesting of structs, unions, optionals and arrays the schema codec follows. libvirt's
    /// types are shallow (< 10); the bound protects against recursive user schemas.
    pub nesting_max: u32,
    /// Most bytes of stream data a reassembler buffers before refusing more (not a libvirt constant:
    /// libvirt bounds a stream's queue by flow control; this is ours, default 32 MiB).
    pub stream_buffer_max: u64,
    /// Most streams a reassembler tracks at once on one connection (ours; libvirt has no fixed cap,
    /// each stream costs a client request slot, `max_client_requests` defaults to 5).
    pub streams_max: u32,
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

    /// Largest payload: `message_max - 24` (`VIR_NET_MESSAGE_PAYLOAD_MAX`). For `*_WITH_FDS` frames the
    /// FD count takes 4 of these bytes.
    pub const fn payload_max(&self) -> u32 {
        self.message_max.saturating_sub(HEADER_LEN as u32)
    }

    /// Largest legal length word: `message_max + 4` (the length word counts itself).
    pub const fn frame_max(&self) -> u64 {
        self.message_max as u64 + LEN_WORD as u64
    }

    /// Replace [`Limits::message_max`]. It must be at least 24 and at most `u32::MAX - 4`; see
    /// [`Limits::validate`].
    #[must_use]
    pub const fn with_message_max(mut self, v: u32) -> Self {
        self.message_max = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::stream_chunk`].
    #[must_use]
    pub const fn with_stream_chunk(mut self, v: u32) -> Self {
        self.stream_chunk = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::string_max`].
    #[must_use]
    pub const fn with_string_max(mut self, v: u32) -> Self {
        self.string_max = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::fds_max`].
    #[must_use]
    pub const fn with_fds_max(mut self, v: u32) -> Self {
        self.fds_max = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::nesting_max`].
    #[must_use]
    pub const fn with_nesting_max(mut self, v: u32) -> Self {
        self.nesting_max = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::stream_buffer_max`].
    #[must_use]
    pub const fn with_stream_buffer_max(mut self, v: u64) -> Self {
        self.stream_buffer_max = v;
        self.profile = Profile::Custom;
        self
    }
    /// Replace [`Limits::streams_max`].
    #[must_use]
    pub const fn with_streams_max(mut self, v: u32) -> Self {
        self.streams_max = v;
        self.profile = Profile::Custom;
        self
    }

    /// Check that the limits are coherent: a header fits in a message, the length word cannot
    /// overflow, a stream chunk fits in a payload.
    pub fn validate(&self) -> Result<(), InvalidLimits> {
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

/// Returned by [`Limits::validate`]: which rule the limits break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid limits: {0}")]
pub struct InvalidLimits(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_matches_virnetprotocol_x() {
        let l = Limits::default();
        assert_eq!(l.message_max, 33_554_432);
        assert_eq!(l.payload_max(), 33_554_408);
        assert_eq!(l.frame_max(), 33_554_436);
        assert_eq!(l.stream_chunk, 262_120);
        assert_eq!(l.string_max, 4_194_304);
        assert_eq!(l.fds_max, 32);
        assert_eq!(Limits::DYNAMIC_16M.payload_max(), 16_777_192);
        assert_eq!(Limits::LEGACY_256K.payload_max(), 262_120);
    }

    #[test]
    fn profiles_validate_and_have_names() {
        for p in Profile::NAMED {
            p.limits().validate().unwrap();
            assert_eq!(Profile::from_name(p.name()), Some(p));
            assert_eq!(p.limits().profile, p);
        }
    }

    #[test]
    fn custom_limits_are_checked() {
        let l = Limits::default().with_message_max(23);
        assert_eq!(l.profile, Profile::Custom);
        assert!(l.validate().is_err());
        assert!(
            Limits::default()
                .with_message_max(u32::MAX)
                .validate()
                .is_err()
        );
        assert!(
            Limits::default()
                .with_message_max(u32::MAX - 4)
                .validate()
                .is_ok()
        );
        assert!(Limits::default().with_message_max(1000).validate().is_err()); // chunk > payload
        assert!(
            Limits::default()
                .with_message_max(1000)
                .with_stream_chunk(976)
                .validate()
                .is_ok()
        );
    }
}
