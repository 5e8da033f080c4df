//! The kernel side: loads the compiled C programs with aya, writes their maps (the kernel
//! [`MapWriter`]), runs them through `BPF_PROG_TEST_RUN`, attaches them to interfaces and
//! reads their counters. Needs root (CAP_BPF, CAP_NET_ADMIN).

use aya::maps::{Array, HashMap, HashOfMaps, MapData, PerCpuArray};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use tenbin_core::flow::FlowKey;

use crate::abi::{
    BackendRec, Counters, FlowKeyAbi, FlowVal, LocalKey, MuxConfigAbi, VipInfo, VipKey, RING_SIZE,
    STAT_NAMES,
};
use crate::writer::{MapWriter, WriteError};

/// How `build.rs` obtained the objects below: `compiled` from `bpf/*.c` with clang, or
/// `prebuilt`, the committed `bpf/prebuilt/*.o` (a machine without clang or libbpf-dev).
pub const OBJECTS_FROM: &str = env!("TENBIN_XDP_OBJECTS");

/// The compiled Mux program.
pub static MUX_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mux.bpf.o"));
/// The host agent's decapsulation program.
pub static DECAP_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/decap.bpf.o"));
/// A pass-through program for the far end of veth pairs.
pub static PASS_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pass.bpf.o"));

/// Loading, attaching or running a program failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("loading the BPF object: {0}")]
    Object(#[from] aya::EbpfError),
    #[error("BPF program: {0}")]
    Program(#[from] ProgramError),
    #[error("BPF map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("the object has no `{0}`")]
    Missing(&'static str),
}

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// XDP action: 1 drop, 2 pass, 3 tx, 4 redirect.
    pub action: u32,
    /// The frame after the program (adjusted head and tail included).
    pub frame: Vec<u8>,
    /// Mean duration per run, in nanoseconds (as the kernel reports it).
    pub ns_per_run: u128,
}

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// How the program went onto the interface.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Attached {
    Driver,
    /// Generic (skb) mode: works everywhere, much slower.
    Generic,
}

/// True when running as root (uid 0), which the kernel-side paths need.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// One loaded XDP program with its maps.
#[derive(Debug)]
pub struct Program {
    ebpf: Ebpf,
    name: &'static str,
}

impl Program {
    /// Loads `obj` and its program `name`, resizing maps as asked.
    pub fn load(
        obj: &[u8],
        name: &'static str,
        max_entries: &[(&str, u32)],
    ) -> Result<Self, LoadError> {
        let mut loader = EbpfLoader::new();
        for (map, n) in max_entries {
            loader.map_max_entries(map, *n);
        }
        let mut ebpf = loader.load(obj)?;
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or(LoadError::Missing(name))?
            .try_into()?;
        prog.load()?;
        Ok(Program { ebpf, name })
    }

    /// The Mux program with a flow table of `flow_entries` entries.
    pub fn mux(flow_entries: u32) -> Result<Self, LoadError> {
        Self::load(MUX_OBJ, "tenbin_mux", &[("flows", flow_entries)])
    }

    pub fn decap() -> Result<Self, LoadError> {
        Self::load(DECAP_OBJ, "tenbin_decap", &[])
    }

    pub fn pass() -> Result<Self, LoadError> {
        Self::load(PASS_OBJ, "tenbin_pass", &[])
    }

    fn xdp(&self) -> Result<&Xdp, LoadError> {
        Ok(self
            .ebpf
            .program(self.name)
            .ok_or(LoadError::Missing(self.name))?
            .try_into()?)
    }

    /// Attaches in driver mode, falling back to generic mode (reported, so callers can warn).
    /// The program stays attached until this value is dropped.
    pub fn attach(&mut self, iface: &str) -> Result<Attached, LoadError> {
        self.attach_as(iface, Attached::Driver)
    }

    /// Attaches in the `wanted` mode; driver mode falls back to generic.
    pub fn attach_as(&mut self, iface: &str, wanted: Attached) -> Result<Attached, LoadError> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(self.name)
            .ok_or(LoadError::Missing(self.name))?
            .try_into()?;
        if wanted == Attached::Generic {
            prog.attach(iface, XdpMode::Skb)?;
            return Ok(Attached::Generic);
        }
        match prog.attach(iface, XdpMode::Driver) {
            Ok(_) => Ok(Attached::Driver),
            Err(ProgramError::UnknownInterface { name }) => {
                Err(ProgramError::UnknownInterface { name }.into())
            }
            Err(_) => {
                prog.attach(iface, XdpMode::Skb)?;
                Ok(Attached::Generic)
            }
        }
    }

    /// Runs the program once (or `repeat` times, for timing) on `frame`.
    pub fn run(&self, frame: &[u8], repeat: u32) -> Result<RunOutput, LoadError> {
        // Room for the largest encapsulation or ICMP reply the program can build.
        let mut out = vec![0u8; frame.len() + 256];
        let r = self.xdp()?.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat: repeat.max(1),
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok(RunOutput {
            action: r.return_value,
            frame: out,
            ns_per_run: r.duration.as_nanos(),
        })
    }

    fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> LoadError {
        move |source| LoadError::Map { map, source }
    }

    fn map_mut(&mut self, map: &'static str) -> Result<&mut aya::maps::Map, LoadError> {
        self.ebpf.map_mut(map).ok_or(LoadError::Missing(map))
    }

    fn map(&self, map: &'static str) -> Result<&aya::maps::Map, LoadError> {
        self.ebpf.map(map).ok_or(LoadError::Missing(map))
    }

    /// The Mux's drop/pass/flow counters, summed over CPUs, in [`STAT_NAMES`] order.
    pub fn stats(&self) -> Result<Vec<u64>, LoadError> {
        self.percpu_sum("stats", STAT_NAMES.len() as u32)
    }

    /// The host agent's counters: decapsulated, passed, dropped, not local.
    pub fn decap_stats(&self) -> Result<Vec<u64>, LoadError> {
        self.percpu_sum("decap_stats", 4)
    }

    fn percpu_sum(&self, name: &'static str, n: u32) -> Result<Vec<u64>, LoadError> {
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.map(name)?).map_err(Self::map_err(name))?;
        (0..n)
            .map(|i| {
                arr.get(&i, 0)
                    .map(|v| v.iter().sum())
                    .map_err(Self::map_err(name))
            })
            .collect()
    }

    fn counters(&self, name: &'static str, id: u32) -> Result<Counters, LoadError> {
        let arr: PerCpuArray<&MapData, Counters> =
            PerCpuArray::try_from(self.map(name)?).map_err(Self::map_err(name))?;
        let mut sum = Counters::default();
        for c in arr.get(&id, 0).map_err(Self::map_err(name))?.iter() {
            sum += *c;
        }
        Ok(sum)
    }

    pub fn vip_counters(&self, vip_id: u32) -> Result<Counters, LoadError> {
        self.counters("vip_stats", vip_id)
    }

    pub fn backend_counters(&self, id: u32) -> Result<Counters, LoadError> {
        self.counters("backend_stats", id)
    }

    /// The backend of a flow's flow-table entry, if any.
    pub fn flow(&self, key: &FlowKey) -> Result<Option<u32>, LoadError> {
        Ok(self.flow_entry(key)?.map(|v| v.backend))
    }

    /// A flow's whole flow-table entry, if any.
    pub fn flow_entry(&self, key: &FlowKey) -> Result<Option<FlowVal>, LoadError> {
        let m: HashMap<&MapData, FlowKeyAbi, FlowVal> =
            HashMap::try_from(self.map("flows")?).map_err(Self::map_err("flows"))?;
        match m.get(&FlowKeyAbi::from(key), 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(Self::map_err("flows")(e)),
        }
    }

    /// Writes a flow-table entry directly (tests: an entry last seen at `seen_ns`).
    pub fn insert_flow(
        &mut self,
        key: &FlowKey,
        backend: u32,
        seen_ns: u64,
    ) -> Result<(), LoadError> {
        let mut m: HashMap<&mut MapData, FlowKeyAbi, FlowVal> =
            HashMap::try_from(self.map_mut("flows")?).map_err(Self::map_err("flows"))?;
        let v = FlowVal {
            backend,
            _pad: 0,
            seen_ns,
        };
        m.insert(FlowKeyAbi::from(key), v, 0)
            .map_err(Self::map_err("flows"))
    }

    /// Forgets every flow (used by tests and benchmarks between phases).
    pub fn clear_flows(&mut self) -> Result<(), LoadError> {
        let mut m: HashMap<&mut MapData, FlowKeyAbi, FlowVal> =
            HashMap::try_from(self.map_mut("flows")?).map_err(Self::map_err("flows"))?;
        let keys: Vec<FlowKeyAbi> = m.keys().filter_map(Result::ok).collect();
        for k in keys {
            let _ = m.remove(&k);
        }
        Ok(())
    }

    /// Host agent: restricts decapsulation to these outer destinations (empty: any).
    pub fn set_locals(&mut self, addrs: &[std::net::IpAddr]) -> Result<(), LoadError> {
        {
            let mut m: HashMap<&mut MapData, LocalKey, u8> =
                HashMap::try_from(self.map_mut("locals")?).map_err(Self::map_err("locals"))?;
            for a in addrs {
                m.insert(LocalKey::new(*a), 1, 0)
                    .map_err(Self::map_err("locals"))?;
            }
        }
        let mut c: Array<&mut MapData, u32> = Array::try_from(self.map_mut("decap_config")?)
            .map_err(Self::map_err("decap_config"))?;
        c.set(0, u32::from(!addrs.is_empty()), 0)
            .map_err(Self::map_err("decap_config"))
    }
}

fn werr(map: &'static str) -> impl Fn(aya::maps::MapError) -> WriteError {
    move |source| WriteError::Map { map, source }
}

fn wmap<'a>(p: &'a mut Program, map: &'static str) -> Result<&'a mut aya::maps::Map, WriteError> {
    p.ebpf.map_mut(map).ok_or(WriteError::Map {
        map,
        source: aya::maps::MapError::InvalidName { name: map.into() },
    })
}

impl MapWriter for Program {
    fn set_config(&mut self, cfg: &MuxConfigAbi) -> Result<(), WriteError> {
        let mut a: Array<&mut MapData, MuxConfigAbi> =
            Array::try_from(wmap(self, "config")?).map_err(werr("config"))?;
        a.set(0, cfg, 0).map_err(werr("config"))
    }

    fn set_egress(&mut self, ifindex: Option<u32>) -> Result<(), WriteError> {
        let mut d: aya::maps::DevMap<&mut MapData> =
            aya::maps::DevMap::try_from(wmap(self, "tx_port")?).map_err(werr("tx_port"))?;
        // Clearing needs no write: the program only redirects while config.egress is set.
        if let Some(i) = ifindex {
            d.set(0, i, None, 0)?;
        }
        Ok(())
    }

    fn set_vip(&mut self, key: VipKey, info: VipInfo) -> Result<(), WriteError> {
        let mut m: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(wmap(self, "vips")?).map_err(werr("vips"))?;
        m.insert(key, info, 0).map_err(werr("vips"))
    }

    fn remove_vip(&mut self, key: &VipKey) -> Result<(), WriteError> {
        let mut m: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(wmap(self, "vips")?).map_err(werr("vips"))?;
        match m.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(werr("vips")(e)),
        }
    }

    fn set_backend(&mut self, id: u32, rec: BackendRec) -> Result<(), WriteError> {
        let mut a: Array<&mut MapData, BackendRec> =
            Array::try_from(wmap(self, "backends")?).map_err(werr("backends"))?;
        a.set(id, rec, 0).map_err(werr("backends"))
    }

    fn clear_backend(&mut self, id: u32) -> Result<(), WriteError> {
        self.set_backend(id, BackendRec::default())
    }

    fn swap_ring(&mut self, vip_id: u32, slots: &[u32]) -> Result<(), WriteError> {
        if slots.len() != RING_SIZE as usize {
            return Err(WriteError::RingSize {
                vip_id,
                len: slots.len(),
            });
        }
        // A fresh inner map, filled completely before the one-step swap into `rings`.
        let mut inner: Array<MapData, u32> =
            Array::create(RING_SIZE, 0).map_err(werr("rings (inner)"))?;
        for (i, s) in (0u32..).zip(slots) {
            inner.set(i, s, 0).map_err(werr("rings (inner)"))?;
        }
        let mut outer: HashOfMaps<&mut MapData, u32, Array<MapData, u32>> =
            HashOfMaps::try_from(wmap(self, "rings")?).map_err(werr("rings"))?;
        outer.insert(vip_id, &inner, 0).map_err(werr("rings"))
    }

    fn clear_ring(&mut self, vip_id: u32) -> Result<(), WriteError> {
        let mut outer: HashOfMaps<&mut MapData, u32, Array<MapData, u32>> =
            HashOfMaps::try_from(wmap(self, "rings")?).map_err(werr("rings"))?;
        match outer.remove(&vip_id) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(werr("rings")(e)),
        }
    }
}
