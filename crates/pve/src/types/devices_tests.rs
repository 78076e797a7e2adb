use super::{AgentConfig, Disk, Memory, NET_MODELS, NetDevice};
use crate::types::ipconfig::{IpConfig, Ipv4Setting};
use crate::types::size::DiskSize;
use proptest::prelude::*;

#[test]
fn net_device_reads_model_mac_and_keeps_other_options() {
    let text = "virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,firewall=1,queues=4";
    let net: NetDevice = text.parse().unwrap();
    assert_eq!(net.model(), "virtio");
    assert_eq!(net.macaddr(), Some("BC:24:11:2A:3B:4C"));
    assert!(net.has_mac("bc:24:11:2a:3b:4c"));
    assert_eq!(net.bridge(), Some("vmbr0"));
    assert!(net.firewall());
    assert_eq!(net.to_string(), text);
    let explicit: NetDevice = "model=e1000,macaddr=BC:24:11:2A:3B:4C,bridge=vmbr1"
        .parse()
        .unwrap();
    assert_eq!(explicit.model(), "e1000");
    assert_eq!(explicit.to_string(), "e1000=BC:24:11:2A:3B:4C,bridge=vmbr1");
    assert!("bridge=vmbr0".parse::<NetDevice>().is_err());
    assert!("virtio=XX:24".parse::<NetDevice>().is_err());
    let mut fresh = NetDevice::new("virtio", "vmbr0");
    fresh.set_firewall(false);
    assert_eq!(fresh.to_string(), "model=virtio,bridge=vmbr0,firewall=0");
}

#[test]
fn disk_reads_volume_and_size() {
    let disk: Disk = "local-lvm:vm-150-disk-0,discard=on,size=32G,ssd=1"
        .parse()
        .unwrap();
    assert_eq!(disk.volume(), "local-lvm:vm-150-disk-0");
    assert_eq!(disk.size().unwrap(), Some(DiskSize::from_gib(32)));
    assert!(!disk.is_cloudinit());
    let cloudinit: Disk = "local-lvm:vm-150-cloudinit,media=cdrom".parse().unwrap();
    assert!(cloudinit.is_cloudinit());
    assert_eq!(cloudinit.media(), Some("cdrom"));
    assert!("size=32G".parse::<Disk>().is_err());
    assert!("local:1,size=lots".parse::<Disk>().is_err());
}

#[test]
fn ipconfig_round_trips_the_runbook_value() {
    let text = "ip=192.168.10.20/24,gw=192.168.10.1";
    let config: IpConfig = text.parse().unwrap();
    assert_eq!(
        config.ip,
        Some(Ipv4Setting::Static("192.168.10.20/24".parse().unwrap()))
    );
    assert_eq!(config.to_string(), text);
    assert_eq!(IpConfig::dhcp().to_string(), "ip=dhcp");
    let dual: IpConfig = "ip=dhcp,ip6=auto".parse().unwrap();
    assert_eq!(dual.to_string(), "ip=dhcp,ip6=auto");
    assert!("ip=300.1.1.1/24".parse::<IpConfig>().is_err());
    assert!("mtu=1500".parse::<IpConfig>().is_err());
}

#[test]
fn agent_and_memory_accept_both_forms() {
    assert!("1".parse::<AgentConfig>().unwrap().enabled());
    assert!(
        "enabled=1,fstrim_cloned_disks=1"
            .parse::<AgentConfig>()
            .unwrap()
            .enabled()
    );
    assert!(!"0".parse::<AgentConfig>().unwrap().enabled());
    assert_eq!(
        "1,type=virtio".parse::<AgentConfig>().unwrap().to_string(),
        "1,type=virtio"
    );
    assert_eq!("2048".parse::<Memory>().unwrap().current, 2048);
    assert_eq!("current=4096".parse::<Memory>().unwrap().current, 4096);
    assert!("lots".parse::<Memory>().is_err());
}

proptest! {
    #[test]
    fn net_devices_round_trip(
        model in proptest::sample::select(NET_MODELS.to_vec()),
        mac in proptest::array::uniform6(any::<u8>()),
        bridge in "vmbr[0-9]{1,2}",
        tag in proptest::option::of(1u16..4095),
    ) {
        let mac = mac.iter().map(|octet| format!("{octet:02X}")).collect::<Vec<_>>().join(":");
        let text = match tag {
            Some(tag) => format!("{model}={mac},bridge={bridge},tag={tag}"),
            None => format!("{model}={mac},bridge={bridge}"),
        };
        let net: NetDevice = text.parse().unwrap();
        prop_assert_eq!(net.to_string(), text);
        prop_assert_eq!(net.tag(), tag);
        prop_assert!(net.has_mac(&mac.to_lowercase()));
    }

    #[test]
    fn ipconfigs_round_trip(address in any::<[u8; 4]>(), prefix in 0u8..=32, gateway in proptest::option::of(any::<[u8; 4]>())) {
        let net = ipnet::Ipv4Net::new(address.into(), prefix).unwrap();
        let config = IpConfig::static_v4(net, gateway.map(Into::into));
        let reparsed: IpConfig = config.to_string().parse().unwrap();
        prop_assert_eq!(reparsed, config);
    }

    #[test]
    fn disks_round_trip_and_keep_sizes(gib in 1u64..10_000, storage in "[a-z][a-z0-9-]{0,10}") {
        let text = format!("{storage}:vm-100-disk-0,discard=on,size={gib}G");
        let disk: Disk = text.parse().unwrap();
        prop_assert_eq!(disk.size().unwrap(), Some(DiskSize::from_gib(gib)));
        prop_assert_eq!(disk.to_string(), text);
    }
}
